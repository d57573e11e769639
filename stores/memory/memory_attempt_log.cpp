#include "stores/memory/memory_attempt_log.hpp"

#include <algorithm>

namespace mailroom {

memory_attempt_log::memory_attempt_log(memory_attempt_log_settings s)
    : settings_(std::move(s)) {}

io_result memory_attempt_log::load(const std::vector<std::string_view>& ids,
                                   std::vector<std::optional<attempt_history>>& out) {
  out.clear();
  if (!available_.load()) {
    return io_result::transient("memory attempt log: unavailable");
  }
  auto now = clock::now();
  std::lock_guard<std::mutex> lock{mutex_};
  out.reserve(ids.size());
  for (auto id : ids) {
    auto it = histories_.find(std::string{id});
    if (it == histories_.end()) {
      out.emplace_back();
    } else if (it->second.expires <= now) {
      erase_locked(it);
      out.emplace_back();
    } else {
      out.emplace_back(it->second.history);
    }
  }
  return io_result::success();
}

io_result memory_attempt_log::deliver(const std::vector<std::string_view>& ids,
                                      std::vector<attempt_history>& out) {
  out.clear();
  if (!available_.load()) {
    return io_result::transient("memory attempt log: unavailable");
  }
  auto now = clock::now();
  std::lock_guard<std::mutex> lock{mutex_};
  out.reserve(ids.size());
  for (auto id : ids) {
    attempt_history h;
    if (auto it = histories_.find(std::string{id}); it != histories_.end()) {
      if (it->second.expires > now) {
        h = std::move(it->second.history);
      }
      erase_locked(it);
    }
    ++h.deliveries;
    out.push_back(h);
    store_locked(std::string{id}, std::move(h), now + settings_.ttl);
  }
  return io_result::success();
}

io_result memory_attempt_log::record(const std::vector<attempt_entry>& entries) {
  if (!available_.load()) {
    return io_result::transient("memory attempt log: unavailable");
  }
  auto expires = clock::now() + settings_.ttl;
  std::lock_guard<std::mutex> lock{mutex_};
  for (const auto& e : entries) {
    std::string id{e.id};
    if (auto it = histories_.find(id); it != histories_.end()) {
      erase_locked(it);
    }
    store_locked(std::move(id), *e.history, expires);
  }
  return io_result::success();
}

void memory_attempt_log::store_locked(std::string id, attempt_history h,
                                      clock::time_point expires) {
  while (!histories_.empty() &&
         histories_.size() >= std::max<std::size_t>(1, settings_.capacity)) {
    erase_locked(histories_.find(oldest_.front()));
  }
  oldest_.push_back(id);
  histories_.emplace(std::move(id), kept{std::move(h), expires, std::prev(oldest_.end())});
}

io_result memory_attempt_log::forget(const std::vector<std::string_view>& ids) {
  if (!available_.load()) {
    return io_result::transient("memory attempt log: unavailable");
  }
  std::lock_guard<std::mutex> lock{mutex_};
  for (auto id : ids) {
    if (auto it = histories_.find(std::string{id}); it != histories_.end()) {
      erase_locked(it);
    }
  }
  return io_result::success();
}

std::size_t memory_attempt_log::size() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return histories_.size();
}

void memory_attempt_log::erase_locked(std::unordered_map<std::string, kept>::iterator it) {
  oldest_.erase(it->second.age);
  histories_.erase(it);
}

} // namespace mailroom
