#include "actors/work_queue.hpp"

#include <algorithm>

namespace mailroom {

namespace {

// A lane takes about this much handler time at once: small enough that a
// result is settled within milliseconds, large enough to batch fast handlers.
constexpr std::int64_t unit_budget_ns = 1'000'000;
// The queue holds about this much handler time per lane.
constexpr std::int64_t window_ns = 100'000'000;

} // namespace

work_queue::work_queue(ordering_mode mode, std::uint32_t lanes, std::uint32_t max_waiting)
    : mode_(mode), lanes_(std::max(1u, lanes)), max_waiting_(std::max(1u, max_waiting)),
      estimates_(std::make_unique<std::atomic<std::int64_t>[]>(lanes_)) {
  for (std::uint32_t i = 0; i < lanes_; ++i) {
    estimates_[i].store(-1, std::memory_order_relaxed);
  }
}

void work_queue::reserve(std::size_t n) {
  std::lock_guard<std::mutex> guard{mutex_};
  reserved_ += n;
}

void work_queue::push(work_batch&& items, std::size_t reserved) {
  std::size_t added = items.size();
  {
    std::lock_guard<std::mutex> guard{mutex_};
    reserved_ -= std::min(reserved_, reserved);
    if (added == 0) {
      return;
    }
    waiting_ += added;
    if (mode_ == ordering_mode::unordered) {
      ready_items_ += added;
      chunks_.push_back({std::move(items), 0});
    } else {
      for (auto& item : items) {
        const auto& name = key_locked(item.msg);
        auto& k = keys_[name];
        if (k.key.empty()) {
          k.key = name;
        }
        k.items.push_back(std::move(item));
        if (k.ready) {
          ++ready_items_;
        } else if (k.taken == 0) {
          make_ready_locked(k);
        }
      }
    }
  }
  if (added == 1) {
    readable_.notify_one();
  } else {
    readable_.notify_all();
  }
}

void work_queue::make_ready_locked(key_state& k) {
  k.ready = true;
  ready_keys_.push_back(&k);
  ready_items_ += k.items.size();
}

bool work_queue::take_ready(std::unique_lock<std::mutex>& guard, std::size_t max,
                            work_batch& out) {
  if (ready_items_ == 0) {
    return false;
  }
  take_locked(max, out);
  bool signal = room_signal_due_locked();
  guard.unlock();
  if (signal && on_room_) {
    on_room_();
  }
  return true;
}

void work_queue::take_locked(std::size_t max, work_batch& out) {
  if (mode_ == ordering_mode::unordered) {
    take_unordered_locked(max, out);
  } else {
    take_keyed_locked(max, out);
  }
}

void work_queue::take_unordered_locked(std::size_t max, work_batch& out) {
  while (!chunks_.empty() && out.size() < max) {
    auto& front = chunks_.front();
    auto left = front.items.size() - front.head;
    std::size_t n = std::min(max - out.size(), left);
    if (out.empty() && front.head == 0 && n == left) {
      out = std::move(front.items); // the common case: one chunk, no per-item move
      chunks_.pop_front();
    } else {
      // One allocation for the whole take, each item moved once.
      auto want = out.size() + std::min(max - out.size(), ready_items_);
      if (out.capacity() < want) {
        out.reserve(std::max(want, 2 * out.capacity())); // geometric: takes of one
      }
      auto first = front.items.begin() + static_cast<std::ptrdiff_t>(front.head);
      std::move(first, first + static_cast<std::ptrdiff_t>(n), std::back_inserter(out));
      front.head += n;
      if (front.head == front.items.size()) {
        chunks_.pop_front();
      }
    }
    ready_items_ -= n;
    waiting_ -= n;
  }
}

void work_queue::take_keyed_locked(std::size_t max, work_batch& out) {
  while (out.size() < max && !ready_keys_.empty()) {
    key_state& k = *ready_keys_.front();
    ready_keys_.pop_front();
    k.ready = false;
    ready_items_ -= k.items.size();
    // The rest of this key waits for these to finish.
    std::size_t n = std::min(max - out.size(), k.items.size());
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back(std::move(k.items.front()));
      k.items.pop_front();
    }
    k.taken += static_cast<std::uint32_t>(n);
    waiting_ -= n;
  }
}

void work_queue::put_back(work_batch&& items) {
  if (items.empty()) {
    return;
  }
  {
    std::lock_guard<std::mutex> guard{mutex_};
    waiting_ += items.size();
    if (mode_ == ordering_mode::unordered) {
      ready_items_ += items.size();
      chunks_.push_front({std::move(items), 0});
    } else {
      // Back to the front of each key, in reverse so each key keeps its order.
      std::vector<key_state*> touched;
      for (auto it = items.rbegin(); it != items.rend(); ++it) {
        auto& k = keys_[key_locked(it->msg)];
        k.items.push_front(std::move(*it));
        --k.taken;
        if (k.ready) {
          ++ready_items_;
        }
        touched.push_back(&k);
      }
      for (auto* k : touched) {
        if (!k->ready && k->taken == 0) {
          make_ready_locked(*k);
        }
      }
    }
  }
  readable_.notify_all();
}

void work_queue::finish(const work_item& item) {
  if (mode_ == ordering_mode::unordered) {
    return;
  }
  bool ready = false;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    finish_locked(key_locked(item.msg), 1);
    ready = ready_items_ > 0;
  }
  if (ready) {
    readable_.notify_one();
  }
}

void work_queue::finish_all(const work_batch& items, std::size_t first) {
  if (mode_ == ordering_mode::unordered || first >= items.size()) {
    return;
  }
  bool ready = false;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    // A unit holds each key's messages next to each other: one lookup a run.
    std::size_t i = first;
    while (i < items.size()) {
      std::string key = key_locked(items[i].msg);
      std::uint32_t run = 0;
      while (i < items.size() && key_locked(items[i].msg) == key) {
        if (!items[i].async_started) {
          ++run;
        }
        ++i;
      }
      if (run > 0) {
        finish_locked(key, run);
      }
    }
    ready = ready_items_ > 0;
  }
  if (ready) {
    readable_.notify_all();
  }
}

void work_queue::finish_locked(const std::string& key, std::uint32_t count) {
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    return;
  }
  auto& k = it->second;
  k.taken -= std::min(k.taken, count);
  if (k.taken > 0 || k.ready) {
    return;
  }
  if (k.items.empty()) {
    keys_.erase(it); // an idle key costs nothing
  } else {
    make_ready_locked(k);
  }
}

std::string work_queue::key_of(const envelope& m) const {
  std::lock_guard<std::mutex> guard{mutex_};
  return key_locked(m);
}

const std::string& work_queue::key_locked(const envelope& m) const {
  if (mode_ != ordering_mode::per_partition) {
    return m.order_key();
  }
  // Topic, a separator no topic name holds, and the partition number.
  scratch_.assign(m.topic);
  scratch_.push_back('\x1f');
  scratch_.append(std::to_string(m.handle.partition));
  return scratch_;
}

work_batch work_queue::remove_if(const std::function<bool(const work_item&)>& pred) {
  work_batch out;
  bool signal = false;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (mode_ == ordering_mode::unordered) {
      remove_unordered_locked(pred, out);
    } else {
      remove_keyed_locked(pred, out);
    }
    waiting_ -= out.size();
    signal = !out.empty() && room_signal_due_locked();
  }
  if (signal && on_room_) {
    on_room_();
  }
  return out;
}

work_batch work_queue::remove_keys(const std::vector<std::string>& keys) {
  if (keys.empty() || mode_ == ordering_mode::unordered) {
    return {};
  }
  // The predicate runs under the lock, so it asks key_locked, not key_of.
  return remove_if([&](const work_item& w) {
    const auto& k = key_locked(w.msg);
    return std::find(keys.begin(), keys.end(), k) != keys.end();
  });
}

void work_queue::remove_unordered_locked(const std::function<bool(const work_item&)>& pred,
                                         work_batch& out) {
  for (auto c = chunks_.begin(); c != chunks_.end();) {
    auto& items = c->items;
    auto keep = std::stable_partition(items.begin() + static_cast<std::ptrdiff_t>(c->head),
                                      items.end(),
                                      [&](const work_item& w) { return !pred(w); });
    auto removed = static_cast<std::size_t>(items.end() - keep);
    std::move(keep, items.end(), std::back_inserter(out));
    items.erase(keep, items.end());
    ready_items_ -= removed;
    c = c->head == items.size() ? chunks_.erase(c) : std::next(c);
  }
}

void work_queue::remove_keyed_locked(const std::function<bool(const work_item&)>& pred,
                                     work_batch& out) {
  for (auto it = keys_.begin(); it != keys_.end();) {
    auto& k = it->second;
    auto keep = std::stable_partition(k.items.begin(), k.items.end(),
                                      [&](const work_item& w) { return !pred(w); });
    auto removed = static_cast<std::size_t>(k.items.end() - keep);
    std::move(keep, k.items.end(), std::back_inserter(out));
    k.items.erase(keep, k.items.end());
    if (k.ready) {
      ready_items_ -= removed;
    }
    if (!k.items.empty() || removed == 0) {
      ++it;
      continue;
    }
    // Nothing of this key waits any more: not ready, and gone once idle.
    if (k.ready) {
      ready_keys_.erase(std::find(ready_keys_.begin(), ready_keys_.end(), &k));
      k.ready = false;
    }
    it = k.taken == 0 ? keys_.erase(it) : std::next(it);
  }
}

void work_queue::wake_all() {
  { std::lock_guard<std::mutex> guard{mutex_}; }
  readable_.notify_all();
}

std::size_t work_queue::waiting() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return waiting_;
}

std::size_t work_queue::target() const {
  auto ns = estimate();
  if (ns < 0) {
    return lanes_; // nothing measured: one per lane until the latency is known
  }
  auto per_lane = window_ns / std::max<std::int64_t>(ns, 1);
  auto t = static_cast<std::uint64_t>(per_lane) * lanes_;
  return static_cast<std::size_t>(std::clamp<std::uint64_t>(t, lanes_, max_waiting_));
}

std::size_t work_queue::room_locked() const {
  auto t = target();
  auto used = ready_items_ + reserved_;
  return used >= t ? 0 : t - used;
}

std::size_t work_queue::room() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return room_locked();
}

std::size_t work_queue::unit_size() const {
  auto ns = estimate();
  if (ns < 0) {
    return 1;
  }
  auto n = unit_budget_ns / std::max<std::int64_t>(ns, 1);
  return static_cast<std::size_t>(std::clamp<std::int64_t>(n, 1, max_unit));
}

clock::duration work_queue::unit_budget() {
  return std::chrono::nanoseconds{unit_budget_ns};
}

void work_queue::publish_estimate(std::uint32_t lane, std::int64_t ns) {
  estimates_[lane % lanes_].store(ns, std::memory_order_relaxed);
}

std::int64_t work_queue::estimate() const {
  std::int64_t worst = -1;
  for (std::uint32_t i = 0; i < lanes_; ++i) {
    worst = std::max(worst, estimates_[i].load(std::memory_order_relaxed));
  }
  return worst;
}

bool work_queue::room_or_signal(std::size_t threshold) {
  std::lock_guard<std::mutex> guard{mutex_};
  // Never above the target: an empty queue always has room for it, so an
  // armed signal cannot wait for room that will never open.
  threshold = std::clamp<std::size_t>(threshold, 1, target());
  if (room_locked() >= threshold) {
    signal_at_ = 0;
    return true;
  }
  signal_at_ = threshold;
  return false;
}

bool work_queue::room_signal_due_locked() {
  if (signal_at_ == 0 || room_locked() < std::min(signal_at_, target())) {
    return false;
  }
  signal_at_ = 0;
  return true;
}

} // namespace mailroom
