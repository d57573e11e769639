#include "actors/worker_inbox.hpp"

namespace mailroom {

void worker_inbox::push(work_batch&& items) {
  caf::actor to_wake;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& item : items) {
      queue_.push_back(std::move(item));
    }
    if (!wake_pending_) {
      wake_pending_ = true;
      to_wake = worker_;
    }
  }
  // Waking outside the lock: a send may enqueue into a detached actor.
  if (to_wake) {
    caf::anon_send(to_wake, wake_atom::value);
  }
}

std::size_t worker_inbox::take(std::size_t max, work_batch& out) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (queue_.empty()) {
    wake_pending_ = false;
    return 0;
  }
  auto n = std::min(max, queue_.size());
  out.reserve(out.size() + n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return n;
}

void worker_inbox::push_front(work_batch&& items) {
  std::lock_guard<std::mutex> guard{mutex_};
  for (auto i = items.rbegin(); i != items.rend(); ++i) {
    queue_.push_front(std::move(*i));
  }
}

work_batch worker_inbox::take_all() {
  std::lock_guard<std::mutex> guard{mutex_};
  work_batch out;
  out.reserve(queue_.size());
  for (auto& item : queue_) {
    out.push_back(std::move(item));
  }
  queue_.clear();
  return out;
}

std::size_t worker_inbox::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return queue_.size();
}

std::shared_ptr<handler_lane> worker_inbox::attach(caf::actor a) {
  std::lock_guard<std::mutex> guard{mutex_};
  worker_ = std::move(a);
  // The new worker drains the queue itself on start; pushes until then need
  // no wake.
  wake_pending_ = true;
  return lane_;
}

caf::actor worker_inbox::worker() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return worker_;
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
