#include "actors/worker_inbox.hpp"

namespace mailroom {

void worker_inbox::push(work_batch&& items) {
  if (items.empty()) {
    return;
  }
  {
    std::lock_guard<std::mutex> guard{mutex_};
    items_ += items.size();
    chunks_.push_back(std::move(items));
  }
  readable_.notify_all();
}

void worker_inbox::push_front(work_batch&& items) {
  if (items.empty()) {
    return;
  }
  {
    std::lock_guard<std::mutex> guard{mutex_};
    items_ += items.size();
    chunks_.push_front(std::move(items));
  }
  readable_.notify_all();
}

void worker_inbox::take_locked(std::size_t max, work_batch& out) {
  while (!chunks_.empty() && out.size() < max) {
    auto& front = chunks_.front();
    if (out.empty() && (front.size() <= max)) {
      out = std::move(front); // the common case: one chunk, no per-item move
      items_ -= out.size();
      chunks_.pop_front();
      continue;
    }
    auto room = max - out.size();
    if (front.size() <= room) {
      items_ -= front.size();
      for (auto& item : front) {
        out.push_back(std::move(item));
      }
      chunks_.pop_front();
    } else {
      // Split a chunk larger than the room left, keeping order.
      for (std::size_t i = 0; i < room; ++i) {
        out.push_back(std::move(front[i]));
      }
      front.erase(front.begin(), front.begin() + static_cast<std::ptrdiff_t>(room));
      items_ -= room;
    }
  }
}

void worker_inbox::wake_all() {
  { std::lock_guard<std::mutex> guard{mutex_}; }
  readable_.notify_all();
}

std::size_t worker_inbox::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return items_;
}

std::shared_ptr<handler_lane> worker_inbox::attach(caf::actor a) {
  std::lock_guard<std::mutex> guard{mutex_};
  worker_ = std::move(a);
  return lane_;
}

void worker_inbox::set_lane(std::shared_ptr<handler_lane> lane) {
  std::lock_guard<std::mutex> guard{mutex_};
  lane_ = std::move(lane);
}

std::shared_ptr<handler_lane> worker_inbox::lane() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return lane_;
}

} // namespace mailroom
