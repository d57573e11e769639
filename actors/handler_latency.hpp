#pragma once

// What one lane has measured of its handlers: a latency estimate per topic
// (handlers differ: an exec handler takes a second where a noop takes a
// microsecond), of which the slowest topic seen lately sizes the units and
// the queue. A topic not seen for a second no longer counts, so one slow
// message long ago does not keep units small forever.

#include <cstdint>
#include <string>
#include <vector>

#include "core/envelope.hpp"

namespace mailroom {

/// Per-topic handler latency of one lane. Not thread-safe: one per lane.
class handler_latency {
public:
  /// Records that `items` messages of `topic` took `elapsed` at `now`.
  void record(const std::string& topic, clock::duration elapsed, std::size_t items,
              clock::time_point now);

  /// Returns the estimate (ns per message) of `topic`, or -1 when the lane
  /// has not timed it.
  std::int64_t estimate(const std::string& topic) const;

  /// Returns the slowest per-message estimate (ns) among topics seen in the
  /// last second, or -1 when none was.
  std::int64_t slowest(clock::time_point now) const;

private:
  struct topic_estimate {
    std::string topic;
    std::int64_t ns = 0; // EWMA of ns per message
    clock::time_point seen;
  };
  std::vector<topic_estimate> topics_; // a handful: searched linearly
};

} // namespace mailroom
