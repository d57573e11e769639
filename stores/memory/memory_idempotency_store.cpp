#include "stores/memory/memory_idempotency_store.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mailroom {

struct memory_idempotency_store::entry {
  const std::string* key = nullptr; // the map's own key: node addresses are stable
  std::string result;
  clock::time_point expires{};
  fencing_token token = 0;
  bool done = false;
  entry* prev = nullptr;
  entry* next = nullptr;
  ttl_list* list = nullptr;
};

// Entries with one TTL, by expiry. With a monotonic clock they arrive almost in
// order, so sorted insertion from the tail is O(1) in practice.
struct memory_idempotency_store::ttl_list {
  entry* head = nullptr;
  entry* tail = nullptr;
};

struct alignas(64) memory_idempotency_store::shard {
  std::mutex mutex;
  std::unordered_map<std::string, entry> entries;
  std::map<std::chrono::milliseconds, ttl_list> lists;
  // C++17 maps have no heterogeneous lookup: reuse one buffer per shard instead of
  // building a string per probe.
  std::string scratch;
};

namespace {

// Groups batch positions by shard, keeping batch order within a shard.
std::vector<std::size_t> by_shard(const std::vector<std::size_t>& shard_of_item,
                                  std::size_t shards, std::vector<std::size_t>& starts) {
  starts.assign(shards + 1, 0);
  for (std::size_t s : shard_of_item) {
    ++starts[s + 1];
  }
  for (std::size_t s = 0; s < shards; ++s) {
    starts[s + 1] += starts[s];
  }
  std::vector<std::size_t> order(shard_of_item.size());
  std::vector<std::size_t> fill(starts.begin(), starts.end() - 1);
  for (std::size_t i = 0; i < shard_of_item.size(); ++i) {
    order[fill[shard_of_item[i]]++] = i;
  }
  return order;
}

} // namespace

memory_idempotency_store::memory_idempotency_store(clock_fn now, std::size_t shards)
    : now_(now ? std::move(now) : clock_fn{[] { return clock::now(); }}),
      shards_(new shard[std::max<std::size_t>(shards, 1)]),
      shard_count_(std::max<std::size_t>(shards, 1)) {}

memory_idempotency_store::~memory_idempotency_store() = default;

memory_idempotency_store::shard&
memory_idempotency_store::shard_of(std::string_view key, std::size_t* index) const {
  // Mix the hash so the shard choice and the map's bucket choice use different bits.
  const std::size_t raw = std::hash<std::string_view>{}(key);
  const std::size_t h = raw * 0x9e3779b97f4a7c15ULL;
  std::size_t i = (h >> 32) % shard_count_;
  if (index != nullptr) {
    *index = i;
  }
  return shards_[i];
}

void memory_idempotency_store::unlink(entry& e) {
  if (e.list == nullptr) {
    return;
  }
  if (e.prev == nullptr) {
    e.list->head = e.next;
  } else {
    e.prev->next = e.next;
  }
  if (e.next == nullptr) {
    e.list->tail = e.prev;
  } else {
    e.next->prev = e.prev;
  }
  e.prev = nullptr;
  e.next = nullptr;
  e.list = nullptr;
}

void memory_idempotency_store::place(shard& s, entry& e, std::chrono::milliseconds ttl,
                                     clock::time_point expires) {
  unlink(e);
  ttl_list& l = s.lists[ttl];
  e.expires = expires;
  e.list = &l;
  entry* before = l.tail;
  while (before != nullptr && before->expires > expires) {
    before = before->prev;
  }
  e.prev = before;
  e.next = before == nullptr ? l.head : before->next;
  if (e.next == nullptr) {
    l.tail = &e;
  } else {
    e.next->prev = &e;
  }
  if (before == nullptr) {
    l.head = &e;
  } else {
    before->next = &e;
  }
}

void memory_idempotency_store::prune(shard& s, clock::time_point now) {
  for (auto it = s.lists.begin(); it != s.lists.end();) {
    ttl_list& l = it->second;
    while (l.head != nullptr && l.head->expires <= now) {
      entry* e = l.head;
      unlink(*e);
      // Copy the key first: erase(key) must not be handed a reference into the
      // node it destroys. One bucket walk, where find + erase(iterator) takes two.
      s.scratch.assign(*e->key);
      s.entries.erase(s.scratch);
    }
    if (l.head == nullptr) {
      it = s.lists.erase(it);
    } else {
      ++it;
    }
  }
}

template <class KeyOf, class Visit>
void memory_idempotency_store::visit_batch(std::size_t n, KeyOf key_of, Visit visit) {
  const auto now = now_();
  std::vector<std::size_t> home(n);
  for (std::size_t i = 0; i < n; ++i) {
    shard_of(key_of(i), &home[i]);
  }
  std::vector<std::size_t> starts;
  auto order = by_shard(home, shard_count_, starts);
  for (std::size_t si = 0; si < shard_count_; ++si) {
    if (starts[si] == starts[si + 1]) {
      continue;
    }
    shard& s = shards_[si];
    std::lock_guard<std::mutex> lock{s.mutex};
    prune(s, now);
    for (std::size_t k = starts[si]; k < starts[si + 1]; ++k) {
      s.scratch.assign(key_of(order[k]));
      visit(s, order[k], now);
    }
  }
}

std::vector<claim_result>
memory_idempotency_store::claim(const std::vector<std::string_view>& keys,
                                std::chrono::milliseconds ttl) {
  std::vector<claim_result> out(keys.size());
  if (!available()) {
    return out; // default status is unavailable
  }
  auto key_of = [&](std::size_t i) { return keys[i]; };
  visit_batch(keys.size(), key_of, [&](shard& s, std::size_t i, clock::time_point now) {
    claim_result& r = out[i];
    auto [it, inserted] = s.entries.try_emplace(s.scratch);
    entry& e = it->second;
    e.key = &it->first;
    bool live = !inserted && e.expires > now;
    if (live && e.done) {
      r.status = claim_result::state::done;
      r.result = e.result;
    } else if (live) {
      r.status = claim_result::state::in_flight;
    } else {
      e.done = false;
      e.token = next_token_.fetch_add(1, std::memory_order_relaxed);
      e.result.clear();
      place(s, e, ttl, now + ttl);
      r.status = claim_result::state::fresh;
      r.token = e.token;
    }
  });
  return out;
}

std::vector<fence_result>
memory_idempotency_store::complete(const std::vector<completion>& batch,
                                   std::chrono::milliseconds ttl) {
  if (!available()) {
    return std::vector<fence_result>(batch.size(), fence_result::unavailable);
  }
  std::vector<fence_result> out(batch.size(), fence_result::fenced);
  auto key_of = [&](std::size_t i) { return batch[i].key; };
  visit_batch(batch.size(), key_of, [&](shard& s, std::size_t i, clock::time_point now) {
    const completion& c = batch[i];
    auto it = s.entries.find(s.scratch);
    if (it == s.entries.end()) {
      return;
    }
    entry& e = it->second;
    if (e.token != c.token || e.expires <= now) {
      return;
    }
    if (!e.done) {
      e.done = true;
      e.result.assign(c.result);
      place(s, e, ttl, now + ttl);
    }
    out[i] = fence_result::applied;
  });
  return out;
}

fence_result memory_idempotency_store::release(std::string_view key,
                                               fencing_token token) {
  if (!available()) {
    return fence_result::unavailable;
  }
  const auto now = now_();
  shard& s = shard_of(key);
  std::lock_guard<std::mutex> lock{s.mutex};
  prune(s, now);
  s.scratch.assign(key);
  auto it = s.entries.find(s.scratch);
  if (it == s.entries.end()) {
    return fence_result::fenced;
  }
  entry& e = it->second;
  if (e.done || e.token != token || e.expires <= now) {
    return fence_result::fenced;
  }
  unlink(e);
  s.entries.erase(it);
  return fence_result::applied;
}

std::size_t memory_idempotency_store::size() {
  const auto now = now_();
  std::size_t n = 0;
  for (std::size_t si = 0; si < shard_count_; ++si) {
    shard& s = shards_[si];
    std::lock_guard<std::mutex> lock{s.mutex};
    prune(s, now);
    n += s.entries.size();
  }
  return n;
}

} // namespace mailroom
