#include "actors/partition_ledger.hpp"

#include <functional>

namespace mailroom {

std::size_t
partition_ledger::partition_hash::operator()(const topic_partition& p) const noexcept {
  return std::hash<std::string>{}(p.topic) * 31u + static_cast<std::size_t>(p.partition);
}

void partition_ledger::enter(const envelope_batch& batch, std::size_t first) {
  std::unique_lock<std::mutex> guard{mutex_, std::defer_lock};
  topic_partition key;
  for (std::size_t i = first; i < batch.size(); ++i) {
    const auto& m = batch[i];
    if (m.handle.partition < 0) {
      continue;
    }
    if (!guard.owns_lock()) {
      guard.lock();
    }
    key.topic = m.topic;
    key.partition = m.handle.partition;
    ++held_[key];
  }
}

void partition_ledger::leave_partitioned(const envelope& msg) {
  bool released = false;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    auto it = held_.find(topic_partition{msg.topic, msg.handle.partition});
    if (it == held_.end()) {
      return;
    }
    if (--it->second == 0) {
      held_.erase(it);
      released = true;
    }
  }
  if (released) {
    released_.notify_all();
  }
}

std::uint64_t partition_ledger::begin_poll() {
  poller_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  return epoch_.fetch_add(1, std::memory_order_acq_rel) + 1;
}

void partition_ledger::revoke(const std::vector<topic_partition>& partitions) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto since = epoch_.load(std::memory_order_acquire);
  if (poller_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
    ++since; // the poll under way, if any, may have fetched them before
  }
  for (const auto& p : partitions) {
    revoked_[p] = {since, p.assignment};
  }
  any_revoked_.store(!revoked_.empty(), std::memory_order_release);
}

bool partition_ledger::revoked_slow(const work_item& item) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto it = revoked_.find(topic_partition{item.msg.topic, item.msg.handle.partition});
  if (it == revoked_.end()) {
    return false;
  }
  const auto& mark = it->second;
  if (mark.assignment != 0 && item.msg.handle.assignment != 0) {
    return item.msg.handle.assignment <= mark.assignment;
  }
  return item.epoch < mark.since_epoch;
}

std::size_t partition_ledger::held_locked(const std::vector<topic_partition>& partitions) const {
  std::size_t n = 0;
  for (const auto& p : partitions) {
    if (auto it = held_.find(p); it != held_.end()) {
      n += it->second;
    }
  }
  return n;
}

std::size_t partition_ledger::held(const std::vector<topic_partition>& partitions) const {
  std::lock_guard<std::mutex> guard{mutex_};
  return held_locked(partitions);
}

std::size_t
partition_ledger::wait_until_released(const std::vector<topic_partition>& partitions,
                                      clock::time_point deadline) {
  std::unique_lock<std::mutex> guard{mutex_};
  released_.wait_until(guard, deadline, [&] { return held_locked(partitions) == 0; });
  return held_locked(partitions);
}

} // namespace mailroom
