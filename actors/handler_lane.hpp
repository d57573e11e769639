#pragma once

// A lane is the thread a worker runs its handlers and settlements on, so that
// user code and blocking adapter I/O never stall CAF's cooperative scheduler.
// The worker actor owns the lane's timeouts: when a handler overstays, the
// worker takes the job over, abandons the lane (which exits once the handler
// returns, its result discarded) and starts a fresh one.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "actors/messages.hpp"
#include "actors/settlement.hpp"

namespace mailroom {

struct engine_context;
class worker_inbox;

/// One job of a lane: a run of items handled in order, then settled together.
///
/// `progress` packs the index of the item being handled with its phase, so
/// the lane finishing an item and the worker timing it out race on one
/// compare-and-swap: exactly one of them decides that item's outcome.
struct lane_job {
  /// Phases of the item at `progress >> 2`.
  enum phase : std::uint64_t { running = 0, finished = 1, taken_over = 2, settling = 3 };

  std::uint64_t id = 0; ///< Unique per job.
  work_batch items;     ///< Items; `preset` holds decided outcomes.
  /// (item index << 2) | phase. Starts as "nothing running" so a watchdog
  /// looking before the first handler starts sees nothing to time out.
  std::atomic<std::uint64_t> progress{finished};
  std::atomic<std::int64_t> started_ns{0}; ///< When the running item started (steady ns).
  std::atomic<bool> cancelled{false};      ///< Seen by handlers through their context.

  /// Returns the packed progress word for item `index` in phase `p`.
  static std::uint64_t word(std::size_t index, phase p) {
    return (static_cast<std::uint64_t>(index) << 2) | p;
  }
};

/// A thread that takes jobs from its worker's inbox and runs them, one at a
/// time: handlers in order, then one batched settlement.
class handler_lane : public std::enable_shared_from_this<handler_lane> {
public:
  /// Creates a lane for the worker whose inbox is `inbox`; `seed` seeds the
  /// lane's retry jitter.
  handler_lane(std::shared_ptr<engine_context> ctx, std::shared_ptr<worker_inbox> inbox,
               std::uint64_t seed);

  ~handler_lane();

  /// Starts the lane's thread.
  void start();

  /// Returns the job being run, or nullptr when idle.
  std::shared_ptr<lane_job> current() const;

  /// Returns true while a job is being run.
  bool busy() const { return busy_.load(std::memory_order_acquire); }

  /// Makes the lane exit as soon as its running handler returns, without
  /// settling or reporting anything.
  void abandon();

  /// Stops the lane: joins it when idle, detaches it when a handler still
  /// runs (the process may end before that handler returns).
  void shutdown();

  /// Most items one job takes: enough to amortise a hand-off and a batched
  /// settlement, few enough that one timeout re-queues little.
  static constexpr std::size_t max_job_items = 256;

  /// Returns true once the lane's thread has left its loop.
  bool exited() const { return exited_.load(std::memory_order_acquire); }

private:
  void run();
  // Returns false when the worker took the job over.
  bool run_job(lane_job& job);

  std::shared_ptr<engine_context> ctx_;
  std::shared_ptr<worker_inbox> inbox_;
  settlement settle_;
  std::thread thread_;
  mutable std::mutex mutex_; // guards job_
  std::shared_ptr<lane_job> job_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  std::atomic<bool> abandoned_{false};
  std::atomic<bool> exited_{false};
};

} // namespace mailroom
