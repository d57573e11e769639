#pragma once

// What survives a worker's restart: the lane it supervises. A restarted
// worker adopts the lane (and whatever handler it is running) instead of
// starting a second one.

#include <cstdint>
#include <memory>
#include <mutex>

namespace mailroom {

class handler_lane;

/// The lane of one worker position.
class worker_slot {
public:
  /// Creates the slot of worker `index`.
  explicit worker_slot(std::uint32_t index) : index_(index) {}

  /// Returns the worker's index.
  std::uint32_t index() const { return index_; }

  /// Replaces the lane (a fresh one after a timeout abandoned the old one).
  void set_lane(std::shared_ptr<handler_lane> lane) {
    std::lock_guard<std::mutex> guard{mutex_};
    lane_ = std::move(lane);
  }

  /// Returns the current lane, or nullptr before the first.
  std::shared_ptr<handler_lane> lane() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return lane_;
  }

private:
  const std::uint32_t index_;
  mutable std::mutex mutex_;
  std::shared_ptr<handler_lane> lane_;
};

} // namespace mailroom
