#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mailroom {

/// The counters an operator reads per topic (Prometheus label `topic`).
#define MAILROOM_TOPIC_COUNTERS(X)                                                      \
  X(received, "Messages that entered the engine: polled plus re-dispatched")           \
  X(acked, "Messages acked: handler ok, done duplicates, unrouted")                    \
  X(retried, "Messages nacked after a failed attempt")                                 \
  X(dead_lettered, "Messages parked in the dead-letter destination")                   \
  X(deduped, "Messages acked as duplicates of done keys")                              \
  X(fenced, "Settles refused because the claim was taken over, and nacks and "        \
            "dead-letters that found the delivery settled by a newer one")             \
  X(handler_errors, "Handler exceptions")                                              \
  X(timeouts, "Handler calls that hit the timeout")

enum class topic_counter : std::uint8_t {
#define MAILROOM_TOPIC_ENUM(name, help) name,
  MAILROOM_TOPIC_COUNTERS(MAILROOM_TOPIC_ENUM)
#undef MAILROOM_TOPIC_ENUM
};

/// How many counters a topic has.
constexpr std::size_t topic_counter_count = 0
#define MAILROOM_TOPIC_ONE(name, help) +1
    MAILROOM_TOPIC_COUNTERS(MAILROOM_TOPIC_ONE)
#undef MAILROOM_TOPIC_ONE
    ;

/// One topic's counters at one moment.
struct topic_counts {
  std::string topic;
  std::array<std::uint64_t, topic_counter_count> values{};

  std::uint64_t operator[](topic_counter c) const {
    return values[static_cast<std::size_t>(c)];
  }
};

/// Counters per topic, for a metrics scrape.
///
/// A topic gets a slot the first time it is counted; slots are never given
/// back, so a reader walks the published ones without a lock. The number of
/// labelled topics is bounded (`capacity`): the rest share the slot labelled
/// `overflow_topic`, so a transport with unbounded topic names cannot grow
/// the scrape (or the time series) without limit.
class topic_counters {
public:
  static constexpr std::size_t capacity = 64;
  /// Parentheses: no Kafka topic or SQS queue can be named so.
  static constexpr std::string_view overflow_topic = "(other)";

  /// Returns the slot of `topic`, giving it one the first time.
  std::size_t slot_of(std::string_view topic);

  /// Adds `n` to counter `c` of slot `slot`.
  void add(std::size_t slot, topic_counter c, std::uint64_t n = 1) {
    slots_[slot].values[static_cast<std::size_t>(c)].fetch_add(n, std::memory_order_relaxed);
  }

  /// Adds `n` to counter `c` of `topic` (a lookup: for rare events).
  void add(std::string_view topic, topic_counter c, std::uint64_t n = 1) {
    add(slot_of(topic), c, n);
  }

  /// Returns every topic counted so far, in the order they were first seen.
  std::vector<topic_counts> snapshot() const;

private:
  struct slot {
    std::string name;
    std::array<std::atomic<std::uint64_t>, topic_counter_count> values{};
  };

  std::size_t find(std::string_view topic, std::size_t used) const;

  std::array<slot, capacity + 1> slots_{}; // the last one is the overflow slot
  std::atomic<std::size_t> used_{0};       // slots [0, used_) have their names
  std::mutex adding_;
};

/// A batch's per-topic counts, added to the shared counters at once.
///
/// Messages of a batch mostly share one topic: the last topic's slot is kept,
/// so counting a message is a string comparison and a local increment.
class topic_tally {
public:
  explicit topic_tally(topic_counters* shared = nullptr) : shared_(shared) {}

  /// Counts `n` for `topic` in counter `c`.
  void add(std::string_view topic, topic_counter c, std::uint64_t n = 1);

  /// Forgets what was counted in `c` since the last flush.
  void discard(topic_counter c);

  /// Returns what was counted in `c` since the last flush, over every topic.
  std::uint64_t total(topic_counter c) const {
    std::uint64_t sum = 0;
    for (const auto& r : rows_) {
      sum += r.values[static_cast<std::size_t>(c)];
    }
    return sum;
  }

  /// Forgets everything counted since the last flush.
  void reset() {
    rows_.clear();
    has_last_ = false;
  }

  /// Adds everything counted to the shared counters and starts over.
  void flush();

private:
  struct row {
    std::size_t slot;
    std::array<std::uint64_t, topic_counter_count> values{};
  };

  topic_counters* shared_;
  std::vector<row> rows_;
  std::string last_topic_;
  std::size_t last_row_ = 0;
  bool has_last_ = false;
};

} // namespace mailroom
