#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/envelope.hpp"
#include "core/metrics.hpp"
#include "mailroom/engine.hpp"

namespace mailroom {

/// Writes the progress line of a run (stderr) and its closing summary table
/// (stdout).
class run_report {
public:
  /// Starts the run's clock; `interval` is the expected time between lines.
  explicit run_report(std::chrono::milliseconds interval);

  /// Writes one progress line: processed, rate since the last line,
  /// in-flight, retried, dead-lettered, deduped.
  void progress(const metrics_snapshot& m);

  /// Writes the summary table: counts, msgs/s, p50/p99 latency, peak RSS.
  /// `dlq_size` is what this run wrote to the dead-letter destination, of
  /// which `rejected` the transport dead-lettered itself without handing
  /// them to the engine (malformed, delivered too often).
  void summary(const metrics_snapshot& m, std::uint64_t dlq_size, std::uint64_t rejected,
               const engine_exit& exit);

  /// Returns `n` with thousands separators ("1,234,567").
  static std::string grouped(std::uint64_t n);

private:
  clock::time_point started_;
  clock::time_point last_;
  std::uint64_t last_settled_ = 0;
};

} // namespace mailroom
