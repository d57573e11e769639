#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/io_result.hpp"
#include "core/latency_histogram.hpp"
#include "core/topic_counters.hpp"

namespace mailroom {

/// Every counter of the engine, once: X(name, help). The snapshot's fields,
/// the live atomics and their copy are generated from this list, so a new
/// counter is one line here.
#define MAILROOM_ENGINE_COUNTERS(X)                                                     \
  X(polled, "Deliveries received from the transport")                                  \
  X(acked, "Messages acked: handler ok, done duplicates, unrouted")                    \
  X(retried, "Messages nacked after a failed attempt")                                 \
  X(dead_lettered, "Messages parked in the dead-letter destination")                   \
  X(rejected, "Deliveries the transport could not decode or that were over its "      \
              "delivery limit, parked in the dead-letter destination unhandled")     \
  X(revoked, "Deliveries dropped unhandled because their partition was revoked "      \
             "(its next owner receives them)")                                       \
  X(deduped, "Messages acked as duplicates of done keys")                              \
  X(deferred, "Messages handed back without a failure: key in flight elsewhere, "      \
              "store outage, drain")                                                   \
  X(handed_back, "Of the deferred: handed back at the drain deadline")                 \
  X(ack_failures, "Messages whose ack failed after retries (delivered again later)")   \
  X(handler_errors, "Handler exceptions")                                              \
  X(timeouts, "Handler calls that hit the timeout")                                    \
  X(unrouted, "Messages without a handler, acked")                                     \
  X(store_errors, "Store calls that failed, by failure class")                         \
  X(store_errors_transient, "Of the store errors: unavailable, may heal (transient)") \
  X(store_errors_fatal, "Of the store errors: refused for good (fatal)")              \
  X(transport_errors, "Transport calls that failed, by failure class")                 \
  X(transport_errors_transient, "Of the transport errors: may heal (transient)")      \
  X(transport_errors_fatal, "Of the transport errors: refused for good (fatal)")      \
  X(transport_errors_poison, "Of the transport errors: the message was bad (poison)") \
  X(fenced, "Settles refused because the claim was taken over, and nacks and "        \
            "dead-letters that found the delivery settled by a newer one")             \
  X(recovered, "Messages the sweeper re-dispatched into the engine")                   \
  X(sweeps, "Sweeper ticks")                                                           \
  X(sweep_stale_found, "Stale pending-dispatch markers the sweeper found")             \
  X(sweep_reclaimable_found, "Expired claims the sweeper found")                       \
  X(sweep_errors, "Sweeper listings that failed (the stage skipped for that tick)")   \
  X(restarts, "Children restarted by the supervisor")                                  \
  X(duplicate_completions, "Asynchronous completions called again, ignored")           \
  X(late_completions, "Asynchronous completions after the timeout or the drain, "      \
                      "ignored")                                                       \
  X(leases_extended, "Delivery leases extended while the engine held them")            \
  X(leases_lost, "Deliveries whose lease the broker no longer granted")                \
  X(steps_executed, "Durable steps whose forward work ran")                            \
  X(steps_replayed, "Durable steps answered from their checkpoint")                    \
  X(compensations, "Compensations of durable steps that ran")                          \
  X(compensation_failures, "Compensations that failed after their retries")           \
  X(checkpoint_errors, "Checkpoint store calls that failed")

/// A latency distribution as Prometheus histograms expose it: cumulative
/// counts at fixed bounds (seconds: 1 ms to 60 s), the count and the sum.
struct latency_buckets {
  /// The bounds, µs, ascending; the +Inf bucket is `count`.
  static constexpr std::array<std::uint64_t, 12> bounds_us{
      1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000, 10000000,
      60000000};
  std::array<std::uint64_t, 12> at_most{}; ///< Samples at most each bound.
  std::uint64_t count = 0;                 ///< Every sample.
  std::uint64_t sum_us = 0;                ///< Their sum, µs.
};

/// A point-in-time copy of the engine's counters and gauges.
struct metrics_snapshot {
#define MAILROOM_SNAPSHOT_FIELD(name, help) std::uint64_t name = 0;
  MAILROOM_ENGINE_COUNTERS(MAILROOM_SNAPSHOT_FIELD)
#undef MAILROOM_SNAPSHOT_FIELD
  std::int64_t in_flight = 0;      ///< Messages in the engine right now.
  std::int64_t in_flight_peak = 0; ///< Highest `in_flight` seen.
  std::int64_t waiting = 0;        ///< Dispatched, waiting for a lane.
  std::int64_t running = 0;        ///< Taken by a lane, or in an asynchronous call.
  std::uint64_t p50_us = 0;        ///< Median receive-to-settle latency, µs.
  std::uint64_t p99_us = 0;        ///< 99th percentile latency, µs.
  std::uint64_t max_us = 0;        ///< Largest latency, µs.
  /// Consecutive failed transport polls up to now (0 while polls succeed).
  std::uint64_t polls_failing = 0;
  /// Receive-to-settle latency of every settled message.
  latency_buckets latency;
  /// Handler call durations: each blocking call, and each batch handler
  /// call's mean per message; asynchronous calls are not timed.
  latency_buckets handler_durations;
  /// The per-topic counters, in the order the topics were first seen.
  std::vector<topic_counts> topics;

  /// Returns the number of messages settled one way or another.
  std::uint64_t settled() const {
    return acked + retried + deferred + dead_lettered + rejected + revoked + fenced +
           ack_failures;
  }

  /// Returns the number of messages that entered the engine: polled, plus
  /// re-dispatched by the sweeper. Equals settled() + in_flight.
  std::uint64_t received() const { return polled + recovered; }
};

/// The engine's counters, shared by every actor and lane.
///
/// Counters are relaxed atomics bumped once per batch, not per message, so
/// they cost nothing measurable on the hot path, and a reader (a metrics
/// scrape) loads them without a lock. Latencies are merged into two
/// histograms under one lock, also once per batch; a snapshot copies them
/// out under it.
class engine_metrics {
public:
#define MAILROOM_ATOMIC_FIELD(name, help) std::atomic<std::uint64_t> name{0};
  MAILROOM_ENGINE_COUNTERS(MAILROOM_ATOMIC_FIELD)
#undef MAILROOM_ATOMIC_FIELD

  /// Messages taken by lanes and not yet decided (gauge).
  std::atomic<std::int64_t> running{0};
  /// Consecutive failed polls (gauge, set by the poller).
  std::atomic<std::uint64_t> polls_failing{0};
  /// The counters an operator reads per topic; bumped beside the totals.
  topic_counters topics;

  /// Counts `n` failed store calls of class `c` (a failure without a class
  /// counts as transient: the store answered "unavailable").
  void store_error(failure_class c, std::uint64_t n = 1) {
    // Each class its own counter: a scrape's classes never go down.
    store_errors.fetch_add(n, std::memory_order_relaxed);
    (c == failure_class::fatal ? store_errors_fatal : store_errors_transient)
        .fetch_add(n, std::memory_order_relaxed);
  }

  /// Counts one failed transport call of class `c`.
  void transport_error(failure_class c) {
    transport_errors.fetch_add(1, std::memory_order_relaxed);
    (c == failure_class::fatal    ? transport_errors_fatal
     : c == failure_class::poison ? transport_errors_poison
                                  : transport_errors_transient)
        .fetch_add(1, std::memory_order_relaxed);
  }

  /// Counts a handler exception of a message of `topic`.
  void handler_error(std::string_view topic) {
    handler_errors.fetch_add(1, std::memory_order_relaxed);
    topics.add(topic, topic_counter::handler_errors);
  }

  /// Counts `n` handler calls of messages of `topic` that hit the timeout.
  void timeout(std::string_view topic, std::uint64_t n = 1) {
    timeouts.fetch_add(n, std::memory_order_relaxed);
    topics.add(topic, topic_counter::timeouts, n);
  }

  /// Adds `n` messages to the in-flight gauge and tracks its peak.
  void enter(std::int64_t n);

  /// Removes `n` messages from the in-flight gauge.
  void leave(std::int64_t n) { in_flight_.fetch_sub(n, std::memory_order_relaxed); }

  /// Returns the in-flight gauge.
  std::int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  /// Merges a batch's latencies into the engine-wide histogram.
  void add_latencies(const latency_histogram& h);

  /// Merges a batch's latencies and handler durations, under one lock.
  void add_latencies(const latency_histogram& latencies, const latency_histogram& handlers);

  /// Returns a copy of every counter and the latency percentiles; `waiting`
  /// is left for the engine to fill in.
  metrics_snapshot snapshot() const;

private:
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::int64_t> in_flight_peak_{0};
  mutable std::mutex latency_mutex_;
  latency_histogram latency_;
  latency_histogram handler_durations_;
};

} // namespace mailroom
