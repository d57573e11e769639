#pragma once

// A lane is the thread a worker runs its handlers on, so that user code never
// stalls CAF's cooperative scheduler. It takes a unit of messages from the
// engine's queue (about a millisecond of work: one message when handlers are
// slow, up to 256 when they are fast), runs them in order, hands the decided
// ones to the settler and takes the next unit. An asynchronous handler's
// message leaves the unit when its call starts: the call settles it.
//
// The worker actor owns the lane's timeouts: when a blocking handler
// overstays, the worker takes the unit over, abandons the lane (which exits
// once the handler returns, its result discarded) and starts a fresh one.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actors/handler_latency.hpp"
#include "actors/work_item.hpp"
#include "core/handler.hpp"

namespace mailroom {

struct engine_context;

/// One unit of a lane: messages handled in order, then handed to the settler.
///
/// `progress` packs the index of the item being handled with its phase, so
/// the lane finishing an item and the worker timing it out race on one
/// compare-and-swap: exactly one of them decides that item's outcome.
struct lane_unit {
  /// Phases of the item at `progress >> 2`.
  enum phase : std::uint64_t { running = 0, finished = 1, taken_over = 2, settling = 3 };

  work_batch items; ///< Items; `preset` holds decided outcomes.
  /// (item index << 2) | phase. Starts as "nothing running" so a watchdog
  /// looking before the first handler starts sees nothing to time out.
  std::atomic<std::uint64_t> progress{finished};
  std::atomic<std::int64_t> started_ns{0}; ///< When the running item started (steady ns).
  std::atomic<bool> cancelled{false};      ///< Seen by handlers through their context.
  /// While a batch handler runs from the item at `progress >> 2`: one past
  /// its last item (a timeout decides them all); 0 otherwise.
  std::atomic<std::size_t> batch_end{0};

  /// Returns the packed progress word for item `index` in phase `p`.
  static std::uint64_t word(std::size_t index, phase p) {
    return (static_cast<std::uint64_t>(index) << 2) | p;
  }
};

/// A thread that takes units from the engine's queue and runs them, one at
/// a time.
class handler_lane : public std::enable_shared_from_this<handler_lane> {
public:
  /// Creates a lane of worker `index`.
  handler_lane(std::shared_ptr<engine_context> ctx, std::uint32_t index);

  ~handler_lane();

  /// Starts the lane's thread.
  void start();

  /// Returns the unit being run, or nullptr when idle.
  std::shared_ptr<lane_unit> current() const;

  /// Returns true while a unit is being run.
  bool busy() const { return busy_.load(std::memory_order_acquire); }

  /// Makes the lane exit as soon as its running handler returns, without
  /// settling or reporting anything.
  void abandon();

  /// Stops the lane: joins it when idle, detaches it when a handler still
  /// runs (the process may end before that handler returns).
  void shutdown();

  /// Returns true once the lane's thread has left its loop.
  bool exited() const { return exited_.load(std::memory_order_acquire); }

private:
  void run();
  // Returns false when the worker took the unit over.
  bool run_unit(lane_unit& unit);
  // Handles item `i` with its handler; false when the worker took it over.
  // Runs items[i] with `entry`, the handler of its topic (null: none).
  bool handle(lane_unit& unit, std::size_t i, const handler_entry* entry);
  // Runs the batch handler of items[i]'s topic on items[i..] of that topic
  // (at most its limit) and decides each, setting `end` one past the last;
  // false when it was taken over.
  bool handle_batch(lane_unit& unit, std::size_t i, const handler_entry& entry,
                    std::size_t& end);
  // Tops a unit that starts with a batch topic's message up to the batch
  // limit, waiting at most the batch window for more.
  void gather_batch(work_batch& items);
  // Sends the later items of a key that failed in a batch back with it.
  void hold_back_behind_failures(work_batch& items, std::size_t first, std::size_t end);
  // Puts the messages after item `i` that share its ordering key back in the
  // queue: an asynchronous call of that key is still running.
  void hold_back_key(lane_unit& unit, std::size_t i, const std::string& key);
  // Gives back the part of a fresh unit past about one budget of work.
  void trim_to_budget(lane_unit& unit);
  // Puts the items from `first` on, none of them started, back in the queue.
  void give_back_rest(lane_unit& unit, std::size_t first);
  // Hands the decided items of a finished unit to the settler.
  void hand_over(lane_unit& unit);

  std::shared_ptr<engine_context> ctx_;
  // Keys given a retry in the current unit where retries keep their order:
  // their later messages are handed back at hand-over (actors/retry_order).
  std::vector<std::string> retried_keys_;
  std::uint32_t index_;
  handler_latency latency_;
  std::thread thread_;
  mutable std::mutex mutex_; // guards unit_
  std::shared_ptr<lane_unit> unit_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  std::atomic<bool> abandoned_{false};
  std::atomic<bool> exited_{false};
};

/// Returns steady-clock nanoseconds now (the unit of `lane_unit::started_ns`).
std::int64_t steady_ns();

} // namespace mailroom
