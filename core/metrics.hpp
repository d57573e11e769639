#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/latency_histogram.hpp"

namespace mailroom {

/// A point-in-time copy of the engine's counters.
struct metrics_snapshot {
  std::uint64_t polled = 0;           ///< Deliveries received from the transport.
  std::uint64_t acked = 0;            ///< Acked: handler ok, done duplicates, unrouted.
  std::uint64_t retried = 0;          ///< Nacked after a failed attempt.
  std::uint64_t dead_lettered = 0;    ///< Parked in the dead-letter destination.
  std::uint64_t deduped = 0;          ///< Acked as duplicates of done keys.
  std::uint64_t deferred = 0;         ///< Handed back without a failure: key in flight
                                      ///< elsewhere, store outage, drain.
  std::uint64_t handler_errors = 0;   ///< Handler exceptions.
  std::uint64_t timeouts = 0;         ///< Handler calls that hit the timeout.
  std::uint64_t unrouted = 0;         ///< Messages without a handler, acked.
  std::uint64_t store_errors = 0;     ///< Store calls that answered unavailable.
  std::uint64_t transport_errors = 0; ///< Transport calls that failed.
  /// Settles refused because the claim was taken over, and nacks and
  /// dead-letters that found the delivery settled by a newer one
  /// (io_result::stale).
  std::uint64_t fenced = 0;
  std::uint64_t recovered = 0;     ///< Messages re-dispatched by the sweeper.
  std::uint64_t sweeps = 0;        ///< Sweeper ticks.
  std::uint64_t restarts = 0;      ///< Children restarted by the supervisor.
  std::int64_t in_flight = 0;      ///< Messages in the engine right now.
  std::int64_t in_flight_peak = 0; ///< Highest `in_flight` seen.
  std::uint64_t p50_us = 0;        ///< Median receive-to-settle latency, µs.
  std::uint64_t p99_us = 0;        ///< 99th percentile latency, µs.
  std::uint64_t max_us = 0;        ///< Largest latency, µs.

  /// Returns the number of messages settled one way or another.
  std::uint64_t settled() const {
    return acked + retried + deferred + dead_lettered + fenced;
  }
};

/// The engine's counters, shared by every actor and lane.
///
/// Counters are relaxed atomics bumped once per batch, not per message, so
/// they cost nothing measurable on the hot path. Latencies are merged into
/// one histogram under a lock, also once per batch.
class engine_metrics {
public:
  std::atomic<std::uint64_t> polled{0};           ///< See metrics_snapshot.
  std::atomic<std::uint64_t> acked{0};            ///< See metrics_snapshot.
  std::atomic<std::uint64_t> retried{0};          ///< See metrics_snapshot.
  std::atomic<std::uint64_t> dead_lettered{0};    ///< See metrics_snapshot.
  std::atomic<std::uint64_t> deduped{0};          ///< See metrics_snapshot.
  std::atomic<std::uint64_t> deferred{0};         ///< See metrics_snapshot.
  std::atomic<std::uint64_t> handler_errors{0};   ///< See metrics_snapshot.
  std::atomic<std::uint64_t> timeouts{0};         ///< See metrics_snapshot.
  std::atomic<std::uint64_t> unrouted{0};         ///< See metrics_snapshot.
  std::atomic<std::uint64_t> store_errors{0};     ///< See metrics_snapshot.
  std::atomic<std::uint64_t> transport_errors{0}; ///< See metrics_snapshot.
  std::atomic<std::uint64_t> fenced{0};           ///< See metrics_snapshot.
  std::atomic<std::uint64_t> recovered{0};        ///< See metrics_snapshot.
  std::atomic<std::uint64_t> sweeps{0};           ///< See metrics_snapshot.
  std::atomic<std::uint64_t> restarts{0};         ///< See metrics_snapshot.

  /// Adds `n` messages to the in-flight gauge and tracks its peak.
  void enter(std::int64_t n);

  /// Removes `n` messages from the in-flight gauge.
  void leave(std::int64_t n) { in_flight_.fetch_sub(n, std::memory_order_relaxed); }

  /// Returns the in-flight gauge.
  std::int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  /// Merges a batch's latencies into the engine-wide histogram.
  void add_latencies(const latency_histogram& h);

  /// Returns a copy of every counter and the latency percentiles.
  metrics_snapshot snapshot() const;

private:
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::int64_t> in_flight_peak_{0};
  mutable std::mutex latency_mutex_;
  latency_histogram latency_;
};

} // namespace mailroom
