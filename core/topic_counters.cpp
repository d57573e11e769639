#include "core/topic_counters.hpp"

namespace mailroom {

std::size_t topic_counters::find(std::string_view topic, std::size_t used) const {
  for (std::size_t i = 0; i < used; ++i) {
    if (slots_[i].name == topic) {
      return i;
    }
  }
  return capacity + 1; // not found
}

std::size_t topic_counters::slot_of(std::string_view topic) {
  // Names are written before `used_` is published (release), and never
  // again: a reader that sees a count sees the names below it.
  auto used = used_.load(std::memory_order_acquire);
  if (auto i = find(topic, used); i <= capacity) {
    return i;
  }
  std::lock_guard<std::mutex> guard{adding_};
  used = used_.load(std::memory_order_relaxed);
  if (auto i = find(topic, used); i <= capacity) {
    return i;
  }
  if (used == capacity) {
    return capacity; // the overflow slot
  }
  slots_[used].name = std::string{topic};
  used_.store(used + 1, std::memory_order_release);
  return used;
}

std::vector<topic_counts> topic_counters::snapshot() const {
  auto used = used_.load(std::memory_order_acquire);
  std::vector<topic_counts> out;
  out.reserve(used + 1);
  auto copy = [&out](const slot& s, std::string_view name) {
    topic_counts t;
    t.topic = std::string{name};
    for (std::size_t c = 0; c < topic_counter_count; ++c) {
      t.values[c] = s.values[c].load(std::memory_order_relaxed);
    }
    out.push_back(std::move(t));
  };
  for (std::size_t i = 0; i < used; ++i) {
    copy(slots_[i], slots_[i].name);
  }
  const auto& overflow = slots_[capacity];
  for (const auto& v : overflow.values) {
    if (v.load(std::memory_order_relaxed) != 0) {
      copy(overflow, overflow_topic);
      break;
    }
  }
  return out;
}

void topic_tally::add(std::string_view topic, topic_counter c, std::uint64_t n) {
  if (!has_last_ || topic != last_topic_) {
    auto slot = shared_->slot_of(topic);
    last_row_ = rows_.size();
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      if (rows_[i].slot == slot) {
        last_row_ = i;
      }
    }
    if (last_row_ == rows_.size()) {
      rows_.push_back({slot, {}});
    }
    last_topic_.assign(topic.data(), topic.size());
    has_last_ = true;
  }
  rows_[last_row_].values[static_cast<std::size_t>(c)] += n;
}

void topic_tally::discard(topic_counter c) {
  for (auto& r : rows_) {
    r.values[static_cast<std::size_t>(c)] = 0;
  }
}

void topic_tally::flush() {
  for (const auto& r : rows_) {
    for (std::size_t c = 0; c < topic_counter_count; ++c) {
      if (r.values[c] != 0) {
        shared_->add(r.slot, static_cast<topic_counter>(c), r.values[c]);
      }
    }
  }
  reset();
}

} // namespace mailroom
