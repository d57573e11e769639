#include "stores/memory/memory_claim_store.hpp"

#include <algorithm>

namespace mailroom {

io_result memory_claim_store::record_dispatch(std::vector<dispatch_record> batch) {
  if (!available()) {
    return io_result::transient("memory claim store: unavailable");
  }
  std::lock_guard<std::mutex> lock{mutex_};
  for (dispatch_record& r : batch) {
    auto key = r.filed_under();
    records_.insert_or_assign(std::move(key), std::move(r));
  }
  return io_result::success();
}

template <class Include, class Older>
io_result memory_claim_store::select(std::size_t limit, std::vector<dispatch_record>& out,
                                     Include include, Older older) {
  if (!available()) {
    return io_result::transient("memory claim store: unavailable");
  }
  if (limit == 0) {
    return io_result::success();
  }
  std::lock_guard<std::mutex> lock{mutex_};
  std::vector<const dispatch_record*> hits;
  for (const auto& kv : records_) {
    if (include(kv.second)) {
      hits.push_back(&kv.second);
    }
  }
  std::size_t n = std::min(limit, hits.size());
  std::partial_sort(
      hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(n), hits.end(),
      [&](const dispatch_record* a, const dispatch_record* b) { return older(*a, *b); });
  out.reserve(out.size() + n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(*hits[i]);
    if (out.back().key.empty()) {
      out.back().key = out.back().message.key;
    }
  }
  return io_result::success();
}

io_result memory_claim_store::list_stale(clock::time_point cutoff, std::size_t limit,
                                         std::vector<dispatch_record>& out) {
  return select(
      limit, out, [&](const dispatch_record& r) { return r.dispatched < cutoff; },
      [](const dispatch_record& a, const dispatch_record& b) {
        return a.dispatched < b.dispatched;
      });
}

io_result memory_claim_store::list_reclaimable(clock::time_point now, std::size_t limit,
                                               std::vector<dispatch_record>& out) {
  return select(
      limit, out, [&](const dispatch_record& r) { return r.claim_expires <= now; },
      [](const dispatch_record& a, const dispatch_record& b) {
        return a.claim_expires < b.claim_expires;
      });
}

fence_result memory_claim_store::mark_terminal(const std::string& key,
                                               fencing_token token) {
  if (!available()) {
    return fence_result::unavailable;
  }
  std::lock_guard<std::mutex> lock{mutex_};
  auto it = records_.find(key);
  if (it == records_.end() || it->second.token != token) {
    return fence_result::fenced;
  }
  records_.erase(it);
  return fence_result::applied;
}

void memory_claim_store::mark_terminal_all(const std::vector<terminal_mark>& batch) {
  if (!available()) {
    return;
  }
  std::lock_guard<std::mutex> lock{mutex_};
  std::string key;
  for (auto& mark : batch) {
    key.assign(mark.key);
    auto it = records_.find(key);
    if (it != records_.end() && it->second.token == mark.token) {
      records_.erase(it);
    }
  }
}

std::size_t memory_claim_store::pending() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return records_.size();
}

} // namespace mailroom
