#include "actors/handler_latency.hpp"

#include <algorithm>

namespace mailroom {

namespace {

constexpr auto forget_after = std::chrono::seconds{1};

} // namespace

void handler_latency::record(const std::string& topic, clock::duration elapsed,
                             std::size_t items, clock::time_point now) {
  if (items == 0) {
    return;
  }
  auto x = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count() /
           static_cast<std::int64_t>(items);
  auto it = std::find_if(topics_.begin(), topics_.end(),
                         [&](const auto& t) { return t.topic == topic; });
  if (it == topics_.end()) {
    topics_.push_back({topic, x, now});
    return;
  }
  // EWMA with weight 1/4 per run of messages; a slower sample counts at once,
  // so a handler that turns slow is noticed on its first slow call.
  it->ns = x > it->ns ? x : it->ns + (x - it->ns) / 4;
  it->seen = now;
}

std::int64_t handler_latency::estimate(const std::string& topic) const {
  for (const auto& t : topics_) {
    if (t.topic == topic) {
      return t.ns;
    }
  }
  return -1;
}

std::int64_t handler_latency::slowest(clock::time_point now) const {
  std::int64_t worst = -1;
  for (const auto& t : topics_) {
    if (now - t.seen <= forget_after) {
      worst = std::max(worst, t.ns);
    }
  }
  return worst;
}

} // namespace mailroom
