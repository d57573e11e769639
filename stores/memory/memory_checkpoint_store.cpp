#include "stores/memory/memory_checkpoint_store.hpp"

namespace mailroom {

io_result memory_checkpoint_store::refused() {
  ++failures_;
  return failure_.load() == failure_class::transient
             ? io_result::transient("memory checkpoint store: simulated outage")
             : io_result::fatal("memory checkpoint store: simulated fatal error");
}

io_result memory_checkpoint_store::write(const std::vector<checkpoint>& batch) {
  if (failure_.load() != failure_class::none) {
    return refused();
  }
  std::lock_guard<std::mutex> guard{mutex_};
  for (const auto& c : batch) {
    steps_[c.key].insert_or_assign(c.step, c.result);
  }
  ++writes_;
  return io_result::success();
}

io_result memory_checkpoint_store::read(const std::string& key, const std::string& step,
                                        std::optional<std::string>& out) {
  if (failure_.load() != failure_class::none) {
    return refused();
  }
  std::lock_guard<std::mutex> guard{mutex_};
  out.reset();
  if (auto k = steps_.find(key); k != steps_.end()) {
    if (auto s = k->second.find(step); s != k->second.end()) {
      out = s->second;
    }
  }
  return io_result::success();
}

io_result memory_checkpoint_store::load(const std::string& key, std::vector<checkpoint>& out) {
  if (failure_.load() != failure_class::none) {
    return refused();
  }
  std::lock_guard<std::mutex> guard{mutex_};
  out.clear();
  if (auto k = steps_.find(key); k != steps_.end()) {
    for (const auto& [step, result] : k->second) {
      out.push_back({key, step, result});
    }
  }
  ++loads_;
  return io_result::success();
}

} // namespace mailroom
