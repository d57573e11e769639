#include "transports/kafka/partition_buffer.hpp"

#include <algorithm>
#include <unordered_set>

namespace mailroom::kafka {

void partition_buffer::push(envelope msg) {
  unsettled_.insert(msg.handle.offset);
  next_ = std::max(next_, msg.handle.offset + 1);
  buffer_.push_back({std::move(msg), clock::time_point::min()});
}

std::size_t partition_buffer::take(std::size_t max, envelope_batch& out,
                                   clock::time_point now) {
  std::size_t moved = 0;
  if (not_due_ == 0 || mode_ == ordering_mode::per_partition) {
    // The common case, and per_partition: the front goes until one not due.
    while (moved < max && !buffer_.empty() && buffer_.front().due <= now) {
      not_due_ -= buffer_.front().due != clock::time_point::min() ? 1 : 0;
      out.push_back(std::move(buffer_.front().msg));
      buffer_.pop_front();
      ++moved;
    }
    return moved;
  }
  // A record not yet due holds back its key (per_key) or only itself
  // (unordered); the others go, in offset order.
  std::unordered_set<std::string> blocked;
  for (auto it = buffer_.begin(); it != buffer_.end() && moved < max;) {
    bool keyed = mode_ == ordering_mode::per_key;
    if (keyed && !blocked.empty() && blocked.count(it->msg.order_key()) != 0) {
      ++it;
      continue;
    }
    if (it->due > now) {
      if (keyed) {
        blocked.insert(it->msg.order_key());
      }
      ++it;
      continue;
    }
    not_due_ -= it->due != clock::time_point::min() ? 1 : 0;
    out.push_back(std::move(it->msg));
    it = buffer_.erase(it);
    ++moved;
  }
  return moved;
}

bool partition_buffer::settle(std::int64_t offset) { return unsettled_.erase(offset) != 0; }

bool partition_buffer::requeue(envelope msg, clock::time_point due) {
  auto offset = msg.handle.offset;
  if (!unsettled(offset)) {
    return false;
  }
  // Marked as waiting even when due now, so `not_due_` counts it until it
  // goes (a due time in the past is as good as min() for take()).
  due = std::max(due, clock::time_point::min() + clock::duration{1});
  auto at = std::lower_bound(buffer_.begin(), buffer_.end(), offset,
                             [](const waiting& w, std::int64_t o) {
                               return w.msg.handle.offset < o;
                             });
  buffer_.insert(at, {std::move(msg), due});
  ++not_due_;
  return true;
}

clock::time_point partition_buffer::next_due() const {
  auto earliest = clock::time_point::max();
  if (not_due_ == 0) {
    return earliest;
  }
  for (const auto& w : buffer_) {
    if (w.due != clock::time_point::min()) {
      earliest = std::min(earliest, w.due);
    }
  }
  return earliest;
}

std::size_t partition_buffer::drop_buffered() {
  auto n = buffer_.size();
  buffer_.clear();
  not_due_ = 0;
  return n;
}

std::int64_t partition_buffer::commit_point() const {
  return unsettled_.empty() ? next_ : *unsettled_.begin();
}

} // namespace mailroom::kafka
