#pragma once

// Settlement turns decided work items into transport and store calls, a whole
// batch at a time: one batched complete, one batched ack, one batch of
// terminal marks. It blocks on adapter I/O, so it runs on the settler's
// thread and in detached actors only.

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/work_item.hpp"
#include "core/attempt_log.hpp"
#include "core/claim_store.hpp"
#include "core/latency_histogram.hpp"
#include "core/io_retry.hpp"
#include "core/retry_policy.hpp"
#include "core/topic_counters.hpp"

namespace mailroom {

struct engine_context;

/// Settles work items against the transport and the stores.
///
/// Not thread-safe: each lane and actor that settles owns one.
class settlement {
public:
  /// Creates a settlement for `ctx` (which must outlive it); `seed` seeds
  /// its retry jitter.
  settlement(engine_context& ctx, std::uint64_t seed);

  /// Settles every item of `items` (each must carry `preset` or `requeue`):
  /// ok → complete + ack, retry → release + nack or dead-letter when over
  /// budget, dead_letter → the dead-letter actor. Reports the settled count
  /// to the supervisor. Leaves `items` in a moved-from state.
  void settle(work_batch& items);

  /// Releases the claims and leases of `items` and marks their dispatch
  /// records terminal (after a dead-letter write).
  void forget(const work_batch& items);

  /// Tells the supervisor that `n` messages left the engine.
  void report_settled(std::size_t n);

  /// Forgets the attempt histories of the settled messages among `msgs`
  /// (those with earlier errors); a failure is logged, not retried: the
  /// histories then expire by themselves.
  void forget_histories(const std::vector<const envelope*>& msgs);

  /// Runs `call` until it succeeds or fails permanently, at most five
  /// times, sleeping a full-jitter backoff between tries (io_retry).
  /// Counts every failure as a transport error and logs the last one.
  template <class Call>
  io_result with_retries(const char* what, Call&& call) {
    auto r = io_retry_.run(std::forward<Call>(call),
                           [&](const io_result& failed, std::uint32_t) {
                             note_io_failure(what, failed);
                           });
    if (r.failure == failure_class::transient) {
      log_give_up(what, r);
    }
    return r;
  }

private:
  void note_io_failure(const char* what, const io_result& r);
  void log_give_up(const char* what, const io_result& r);
  // Both return the transport's answer: `stale` when a newer delivery of the
  // message settles it, which is counted as fenced rather than retried.
  io_result nack(work_item& item, std::chrono::milliseconds delay);
  io_result release_then_nack(work_item& item, std::chrono::milliseconds delay);
  // Records the histories of the items at `retries_`, then nacks them.
  void retry_all(work_batch& items);
  // Lets go of what the engine holds for a departing item (lease, partition).
  void release_holds(const work_item& item);
  // Counts `item` in `c` of its topic (added to the shared counters per batch).
  void count(const work_item& item, topic_counter c) { tally_.add(item.msg.topic, c); }

  engine_context* ctx_;
  retry_policy retry_;
  io_retry io_retry_;
  std::vector<const envelope*> acks_;
  std::vector<std::size_t> stale_;
  std::vector<done_mark> completions_;
  std::vector<std::size_t> completion_items_;
  std::vector<terminal_mark> marks_;
  std::vector<std::size_t> retries_;
  std::vector<std::size_t> behind_; // handed back behind a retry of their key
  std::vector<attempt_history> histories_;
  std::vector<attempt_entry> entries_;
  std::vector<std::string_view> forget_ids_;
  bool history_failing_ = false;
  work_batch parked_;
  latency_histogram latencies_;
  latency_histogram handler_durations_;
  topic_tally tally_;
};

} // namespace mailroom
