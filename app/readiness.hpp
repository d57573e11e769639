#pragma once

// What /readyz answers: ready while the transport's polls succeed, its
// broker answers and every Redis store answers a PING, not ready during the
// drain. A probe's answer is
// kept for a second, so a scrape storm does not become a PING storm.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "app/app_config.hpp"
#include "core/metrics.hpp"

namespace mailroom {

class redis_connection;
class transport;

/// Whether this instance should get work now, and why not.
struct readiness_report {
  bool ready = false;
  std::string json; ///< {"ready":…,"draining":…,"down":[{"component":…,"reason":…}]}
};

/// Readiness of one `mailroom run`. Thread-safe.
class readiness {
public:
  /// Probes Redis when `cfg` keeps a store (or the transport) there, and
  /// `source` (its broker: `transport::unreachable`), which must outlive
  /// this.
  readiness(const app_config& cfg, transport& source);
  ~readiness();

  /// From now on, not ready: the drain began.
  void set_draining();

  /// Returns true once the drain began.
  bool draining() const;

  /// Returns the verdict for the engine's counters `m`; an engine that
  /// `stopped` (by itself, on a failure) is not ready.
  readiness_report check(const metrics_snapshot& m, bool stopped);

private:
  struct down {
    std::string component;
    std::string reason;
  };
  std::vector<down> probe_stores();

  std::atomic<bool> draining_{false}; // set by the signal thread: never waits on a probe
  std::mutex mutex_;                  // one probe at a time; guards what it found
  std::unique_ptr<redis_connection> redis_;
  transport& source_;
  std::chrono::milliseconds probe_timeout_;
  std::chrono::steady_clock::time_point probed_{};
  std::vector<down> stores_down_;
};

} // namespace mailroom
