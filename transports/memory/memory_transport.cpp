#include "transports/memory/memory_transport.hpp"

#include "core/instance_name.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace mailroom {

namespace {

// A wait this long is "forever" and keeps `now + wait` far from overflow.
constexpr std::chrono::milliseconds longest_wait = std::chrono::hours(24 * 365);

std::chrono::milliseconds clamp_wait(std::chrono::milliseconds w) {
  return std::clamp(w, std::chrono::milliseconds::zero(), longest_wait);
}

// Orders the delayed heap as a min-heap on (due, seq).
const auto due_after = [](const auto& a, const auto& b) {
  return a.due != b.due ? a.due > b.due : a.seq > b.seq;
};

} // namespace

memory_transport::memory_transport(memory_transport_settings s)
    : settings_(s), source_id_("memory:" + instance_name()) {
  settings_.capacity =
      std::clamp<std::size_t>(settings_.capacity, 1, static_cast<std::size_t>(npos) - 1);
  settings_.capacity_bytes = std::max<std::size_t>(settings_.capacity_bytes, 1);
}

memory_transport::~memory_transport() = default;

// ---- slot lists -------------------------------------------------------------

memory_transport::slot_index memory_transport::take_slot() {
  if (free_.head != npos) {
    slot_index i = free_.head;
    free_.head = slots_[i].next;
    --free_.size;
    return i;
  }
  slots_.emplace_back();
  return static_cast<slot_index>(slots_.size() - 1);
}

void memory_transport::free_slot(slot_index i) {
  slot& s = slots_[i];
  bytes_ -= std::min(bytes_, s.msg.payload.size());
  // Drop the payload now rather than at reuse, so an idle transport holds nothing.
  s.msg = envelope{};
  s.state = slot_state::free;
  s.prev = npos;
  s.next = free_.head;
  free_.head = i;
  ++free_.size;
}

void memory_transport::push_back(slot_list& l, slot_index i) {
  slot& s = slots_[i];
  s.prev = l.tail;
  s.next = npos;
  if (l.tail == npos) {
    l.head = i;
  } else {
    slots_[l.tail].next = i;
  }
  l.tail = i;
  ++l.size;
}

memory_transport::slot_index memory_transport::pop_front(slot_list& l) {
  slot_index i = l.head;
  unlink(l, i);
  return i;
}

void memory_transport::unlink(slot_list& l, slot_index i) {
  slot& s = slots_[i];
  if (s.prev == npos) {
    l.head = s.next;
  } else {
    slots_[s.prev].next = s.next;
  }
  if (s.next == npos) {
    l.tail = s.prev;
  } else {
    slots_[s.next].prev = s.prev;
  }
  s.prev = npos;
  s.next = npos;
  --l.size;
}

void memory_transport::insert_in_flight(slot_index i) {
  // Deadlines mostly arrive in order: walk back from the tail.
  slot_index after = in_flight_.tail;
  while (after != npos && slots_[after].due > slots_[i].due) {
    after = slots_[after].prev;
  }
  slot& s = slots_[i];
  s.prev = after;
  s.next = after == npos ? in_flight_.head : slots_[after].next;
  if (s.next == npos) {
    in_flight_.tail = i;
  } else {
    slots_[s.next].prev = i;
  }
  if (after == npos) {
    in_flight_.head = i;
  } else {
    slots_[after].next = i;
  }
  ++in_flight_.size;
}

memory_transport::slot_index memory_transport::find_in_flight(const receipt& r) const {
  if (r.offset < 0 || static_cast<std::uint64_t>(r.offset) >= slots_.size()) {
    return npos;
  }
  auto i = static_cast<slot_index>(r.offset);
  const slot& s = slots_[i];
  if (s.state != slot_state::in_flight || s.seq != r.seq ||
      s.generation != r.generation) {
    return npos;
  }
  return i;
}

void memory_transport::promote(clock::time_point now) {
  while (in_flight_.head != npos && slots_[in_flight_.head].due <= now) {
    slot_index i = pop_front(in_flight_);
    slots_[i].state = slot_state::ready;
    push_back(ready_, i);
    ++counters_.redelivered_by_timeout;
  }
  while (!delayed_.empty() && delayed_.front().due <= now) {
    std::pop_heap(delayed_.begin(), delayed_.end(), due_after);
    delayed_entry e = delayed_.back();
    delayed_.pop_back();
    slot& s = slots_[e.index];
    if (s.state == slot_state::delayed && s.seq == e.seq) {
      s.state = slot_state::ready;
      push_back(ready_, e.index);
    }
  }
}

// ---- producer side ----------------------------------------------------------

std::size_t memory_transport::insert_range(envelope* first, envelope* last, bool forever,
                                           clock::time_point deadline) {
  std::size_t inserted = 0;
  bool wake_pollers = false;
  {
    std::unique_lock<std::mutex> lock{mutex_};
    for (envelope* m = first; m != last;) {
      if (closed_ || input_closed_) {
        break;
      }
      if (full(m->payload.size())) {
        // Let consumers see what this call added before sleeping on them.
        if (wake_pollers && poll_waiters_ > 0) {
          readable_.notify_all();
          wake_pollers = false;
        }
        ++publish_waiters_;
        if (forever) {
          writable_.wait(lock);
        } else {
          writable_.wait_until(lock, deadline);
        }
        --publish_waiters_;
        if (!forever && clock::now() >= deadline && full(m->payload.size())) {
          break;
        }
        continue;
      }
      slot_index i = take_slot();
      slot& s = slots_[i];
      bytes_ += m->payload.size();
      s.msg = std::move(*m);
      s.seq = next_seq_++;
      s.generation = 0;
      if (s.msg.id.empty()) {
        s.msg.id = std::to_string(s.seq);
      }
      if (s.msg.key.empty()) {
        s.msg.key = s.msg.id;
      }
      s.msg.handle = receipt{};
      s.state = slot_state::ready;
      push_back(ready_, i);
      ++counters_.published;
      ++inserted;
      ++m;
      wake_pollers = true;
    }
    wake_pollers = wake_pollers && poll_waiters_ > 0;
  }
  if (wake_pollers) {
    readable_.notify_all();
  }
  return inserted;
}

io_result memory_transport::publish(envelope msg) {
  if (insert_range(&msg, &msg + 1, true, {}) == 1) {
    return io_result::success();
  }
  return io_result::fatal("memory transport: input closed");
}

io_result memory_transport::publish_batch(std::vector<envelope> batch) {
  auto n = insert_range(batch.data(), batch.data() + batch.size(), true, {});
  if (n == batch.size()) {
    return io_result::success();
  }
  return io_result::fatal("memory transport: input closed after " + std::to_string(n) +
                          " of " + std::to_string(batch.size()) + " messages");
}

std::size_t memory_transport::publish_some(std::vector<envelope>& batch,
                                           std::size_t first,
                                           std::chrono::milliseconds wait) {
  if (first >= batch.size()) {
    return 0;
  }
  return insert_range(batch.data() + first, batch.data() + batch.size(), false,
                      clock::now() + clamp_wait(wait));
}

void memory_transport::close_input() {
  {
    std::lock_guard<std::mutex> lock{mutex_};
    input_closed_ = true;
  }
  readable_.notify_all();
  writable_.notify_all();
}

bool memory_transport::accepts_input() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return !input_closed_ && !closed_;
}

// ---- consumer side ----------------------------------------------------------

io_result memory_transport::poll(std::size_t max, std::chrono::milliseconds wait,
                                 envelope_batch& out) {
  if (max == 0) {
    return io_result::success();
  }
  std::unique_lock<std::mutex> lock{mutex_};
  // `now` is read under the lock, so deadlines enter in_flight_ in order.
  auto now = clock::now();
  const auto deadline = now + clamp_wait(wait);
  for (;;) {
    promote(now);
    if (ready_.size > 0 || closed_ || drained() || now >= deadline) {
      break;
    }
    auto wake = deadline;
    if (!delayed_.empty()) {
      wake = std::min(wake, delayed_.front().due);
    }
    if (in_flight_.head != npos) {
      wake = std::min(wake, slots_[in_flight_.head].due);
    }
    ++poll_waiters_;
    readable_.wait_until(lock, wake);
    --poll_waiters_;
    now = clock::now();
  }
  if (closed_) {
    return io_result::success();
  }
  const std::size_t n = std::min(max, ready_.size);
  const auto visible_again = now + settings_.visibility_timeout;
  out.reserve(out.size() + n);
  for (std::size_t k = 0; k < n; ++k) {
    slot_index i = pop_front(ready_);
    slot& s = slots_[i];
    ++s.generation;
    s.state = slot_state::in_flight;
    s.due = visible_again;
    push_back(in_flight_, i);
    out.push_back(s.msg);
    envelope& e = out.back();
    e.attempt = static_cast<std::uint32_t>(s.generation);
    e.received = now;
    e.handle.seq = s.seq;
    e.handle.generation = s.generation;
    e.handle.offset = static_cast<std::int64_t>(i);
    if (settings_.max_deliveries > 0 && e.attempt > settings_.max_deliveries) {
      e.poison = "delivery count " + std::to_string(e.attempt) + " exceeds " +
                 std::to_string(settings_.max_deliveries);
    }
  }
  counters_.delivered += n;
  return io_result::success();
}

io_result memory_transport::ack(const std::vector<const envelope*>& batch) {
  bool wake_publishers = false;
  bool wake_pollers = false;
  {
    std::lock_guard<std::mutex> lock{mutex_};
    std::uint64_t acked = 0;
    for (const envelope* e : batch) {
      slot_index i = e == nullptr ? npos : find_in_flight(e->handle);
      if (i == npos) {
        ++counters_.stale_settles;
        continue;
      }
      unlink(in_flight_, i);
      free_slot(i);
      ++acked;
    }
    counters_.acked += acked;
    wake_publishers = acked > 0 && publish_waiters_ > 0;
    wake_pollers = acked > 0 && poll_waiters_ > 0 && drained();
  }
  if (wake_publishers) {
    writable_.notify_all();
  }
  if (wake_pollers) {
    readable_.notify_all();
  }
  return io_result::success();
}

io_result memory_transport::nack(const envelope& msg, std::chrono::milliseconds delay) {
  bool wake_pollers = false;
  {
    std::lock_guard<std::mutex> lock{mutex_};
    slot_index i = find_in_flight(msg.handle);
    if (i == npos) {
      ++counters_.stale_settles;
      return io_result::stale_delivery();
    }
    unlink(in_flight_, i);
    slot& s = slots_[i];
    ++counters_.nacked;
    if (delay.count() <= 0) {
      s.state = slot_state::ready;
      push_back(ready_, i);
    } else {
      s.state = slot_state::delayed;
      s.due = clock::now() + std::min(delay, longest_wait);
      delayed_.push_back({s.due, s.seq, i});
      std::push_heap(delayed_.begin(), delayed_.end(), due_after);
    }
    // A delayed message also wakes pollers so they shorten their sleep to its due time.
    wake_pollers = poll_waiters_ > 0;
  }
  if (wake_pollers) {
    readable_.notify_all();
  }
  return io_result::success();
}

io_result memory_transport::dead_letter(const envelope& msg,
                                        const dead_letter_record& record) {
  memory_dead_letter entry{msg, record};
  bool wake_publishers = false;
  bool wake_pollers = false;
  {
    std::lock_guard<std::mutex> lock{mutex_};
    slot_index i = find_in_flight(msg.handle);
    if (i == npos) {
      ++counters_.stale_settles;
      return io_result::stale_delivery();
    }
    dead_letters_.push_back(std::move(entry));
    unlink(in_flight_, i);
    free_slot(i);
    ++counters_.dead_lettered;
    wake_publishers = publish_waiters_ > 0;
    wake_pollers = poll_waiters_ > 0 && drained();
  }
  if (wake_publishers) {
    writable_.notify_all();
  }
  if (wake_pollers) {
    readable_.notify_all();
  }
  return io_result::success();
}

std::optional<lease_terms> memory_transport::lease() const {
  auto d = settings_.visibility_timeout;
  return lease_terms{d, std::max(d / 3, std::chrono::milliseconds{1})};
}

io_result memory_transport::extend(const std::vector<const receipt*>& receipts,
                                   clock::time_point until,
                                   std::vector<std::size_t>& lost) {
  std::lock_guard<std::mutex> lock{mutex_};
  for (std::size_t k = 0; k < receipts.size(); ++k) {
    slot_index i = receipts[k] == nullptr ? npos : find_in_flight(*receipts[k]);
    if (i == npos) {
      lost.push_back(k);
      continue;
    }
    unlink(in_flight_, i);
    slots_[i].due = std::max(slots_[i].due, until);
    insert_in_flight(i);
    ++counters_.extended;
  }
  return io_result::success();
}

bool memory_transport::exhausted() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return drained();
}

io_result memory_transport::close() {
  {
    std::lock_guard<std::mutex> lock{mutex_};
    closed_ = true;
  }
  readable_.notify_all();
  writable_.notify_all();
  return io_result::success();
}

// ---- inspection -------------------------------------------------------------

std::optional<std::uint64_t> memory_transport::dead_letter_depth() {
  std::lock_guard<std::mutex> lock{mutex_};
  return dead_letters_.size();
}

std::vector<memory_dead_letter> memory_transport::dead_letters() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return dead_letters_;
}

memory_transport_stats memory_transport::stats() const {
  std::lock_guard<std::mutex> lock{mutex_};
  memory_transport_stats s = counters_;
  s.ready = ready_.size;
  s.delayed = delayed_.size();
  s.in_flight = in_flight_.size;
  return s;
}

} // namespace mailroom
