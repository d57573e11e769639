#pragma once

// A worker's queue of dispatched work, kept outside the worker actor so that
// nothing dispatched is lost when the worker crashes: the restarted worker
// adopts the same inbox, and the same lane.

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

  /// Appends `items` (moved from) and wakes the worker if it was idle.
  void push(work_batch&& items);

  /// Moves up to `max` items into `out`; when none is left, the next push
  /// wakes the worker again. Returns the number taken.
  std::size_t take(std::size_t max, work_batch& out);

  /// Puts `items` back at the front, ahead of everything queued.
  void push_front(work_batch&& items);

  /// Removes and returns everything queued.
  work_batch take_all();

  /// Returns the number of queued items.
  std::size_t size() const;

  /// Makes `a` the worker to wake; returns the lane it should adopt.
  std::shared_ptr<handler_lane> attach(caf::actor a);

  /// Returns the current worker handle.
  caf::actor worker() const;

  /// Replaces the lane (after a timeout abandoned the old one).
  void set_lane(std::shared_ptr<handler_lane> lane);

  /// Returns the current lane.
  std::shared_ptr<handler_lane> lane() const;

private:
  std::uint32_t index_;
  mutable std::mutex mutex_;
  std::deque<work_item> queue_;
  caf::actor worker_;
  std::shared_ptr<handler_lane> lane_;
  bool wake_pending_ = false;
};

} // namespace mailroom
