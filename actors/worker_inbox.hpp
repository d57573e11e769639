#pragma once

// A worker's queue of dispatched work, kept outside the worker actor so that
// nothing dispatched is lost when the worker crashes. Its lane takes work
// straight from here: the hot path never waits for an actor to be scheduled.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include <caf/actor.hpp>

#include "actors/messages.hpp"

namespace mailroom {

class handler_lane;

/// The work queue, lane and current actor handle of one worker slot.
class worker_inbox {
public:
  /// Creates the inbox of worker `index`.
  explicit worker_inbox(std::uint32_t index) : index_(index) {}

  /// Returns the worker's index.
  std::uint32_t index() const { return index_; }

  /// Appends `items` as one chunk (no per-item copy) and wakes the lane.
  void push(work_batch&& items);

  /// Puts `items` back at the front, ahead of everything queued.
  void push_front(work_batch&& items);

  /// Waits until work is queued or `stop()` returns true, then moves up to
  /// about `max` items into `out` (whole chunks when they fit). Returns false
  /// when it returned because of `stop`.
  template <class Stop> bool wait_take(std::size_t max, work_batch& out, Stop stop) {
    std::unique_lock<std::mutex> guard{mutex_};
    readable_.wait(guard, [&] { return !chunks_.empty() || stop(); });
    if (chunks_.empty()) {
      return false;
    }
    take_locked(max, out);
    return true;
  }

  /// Wakes a lane blocked in `wait_take` so it re-checks its stop condition.
  void wake_all();

  /// Returns the number of queued items.
  std::size_t size() const;

  /// Makes everything queued now and later be handed back instead of run.
  void set_handing_back() { handing_back_.store(true, std::memory_order_release); }

  /// Returns true once the drain deadline asked for hand-back.
  bool handing_back() const { return handing_back_.load(std::memory_order_acquire); }

  /// Makes `a` the worker in charge; returns the lane it should adopt.
  std::shared_ptr<handler_lane> attach(caf::actor a);

  /// Replaces the lane (after a timeout abandoned the old one).
  void set_lane(std::shared_ptr<handler_lane> lane);

  /// Returns the current lane.
  std::shared_ptr<handler_lane> lane() const;

private:
  void take_locked(std::size_t max, work_batch& out);

  std::uint32_t index_;
  mutable std::mutex mutex_;
  std::condition_variable readable_;
  std::deque<work_batch> chunks_;
  std::size_t items_ = 0;
  caf::actor worker_;
  std::shared_ptr<handler_lane> lane_;
  std::atomic<bool> handing_back_{false};
};

} // namespace mailroom
