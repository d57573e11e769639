#pragma once

// The Kafka benchmark's writers: one that pre-fills a topic as fast as the
// broker takes it, and one that writes at a fixed rate with the send time
// in each record, for the end-to-end latency runs. Both are plain librdkafka
// producers (acks=1, no idempotence), records spread round-robin over the
// partitions, null keys.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace mailroom::bench {

/// What a pre-fill wrote.
struct fill_report {
  std::uint64_t delivered = 0; ///< Records the broker confirmed.
  std::uint64_t failed = 0;    ///< Records whose delivery report was an error.
  double seconds = 0;          ///< From the first produce call to the last report.
};

/// Writes `records` records of `bytes` bytes to partitions 0..`partitions`-1
/// of `topic` round-robin (linger 20 ms, batches of up to 10,000 records,
/// acks=1) and waits for every delivery report, printing progress on stderr
/// every second. Throws std::runtime_error when the producer cannot be made
/// or the flush does not finish within 120 s.
fill_report fill_topic(const std::string& brokers, const std::string& topic, int partitions,
                       std::uint64_t records, std::size_t bytes);

/// A record's send stamp: its sequence number and the steady-clock time it
/// was handed to the producer.
struct send_stamp {
  std::uint64_t seq = 0;     ///< 0, 1, 2, ... in send order.
  std::int64_t sent_ns = 0;  ///< steady_clock nanoseconds since its epoch.
  bool valid = false;        ///< False when the payload held no stamp.
};

/// Returns the current steady_clock time in nanoseconds since its epoch (the
/// clock both stamps and their readers use: one process, one clock).
std::int64_t steady_ns();

/// Parses the stamp at the start of `payload` ("<seq> <sent_ns> " then padding).
send_stamp read_stamp(std::string_view payload);

/// A thread that writes `total` records of `bytes` bytes at `rate` records
/// per second (each due at start + i / rate; it catches up after a stall
/// rather than skipping), each stamped with its sequence number and send
/// time. Its producer lingers 1 ms, so a record waits at most ~1 ms to be
/// batched.
class paced_producer {
public:
  /// Creates the producer; nothing is sent until `start`. Throws
  /// std::runtime_error when librdkafka refuses the configuration.
  paced_producer(const std::string& brokers, const std::string& topic, int partitions,
                 std::uint64_t rate, std::uint64_t total, std::size_t bytes);

  /// Waits for the thread and destroys the producer.
  ~paced_producer();

  paced_producer(const paced_producer&) = delete;
  paced_producer& operator=(const paced_producer&) = delete;

  /// Starts writing.
  void start();

  /// Waits until every record is written and its delivery reported (at most
  /// 30 s for the flush). Returns true when none failed.
  bool join();

  /// Returns the records handed to the producer so far.
  std::uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }

  /// Returns the records whose delivery failed.
  std::uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

  /// Returns how far behind schedule the writer fell at worst, µs.
  std::int64_t max_lag_us() const { return max_lag_us_.load(std::memory_order_relaxed); }

private:
  struct state;
  void run();

  std::unique_ptr<state> state_;
  std::string topic_;
  int partitions_;
  std::uint64_t rate_;
  std::uint64_t total_;
  std::size_t bytes_;
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::int64_t> max_lag_us_{0};
  std::thread thread_;
  bool joined_ = false;
};

} // namespace mailroom::bench
