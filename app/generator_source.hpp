#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "transports/memory/memory_transport.hpp"

namespace mailroom {

/// Settings of a generator_source. Every field has its default and unit beside it.
///
/// The three ratios are shares of disjoint kinds, so their sum must not
/// exceed 1; the first messages cannot be duplicates (nothing to repeat yet).
struct generator_settings {
  std::uint64_t messages = 1000000; ///< Messages to publish. Default 1M.
  /// Share of messages whose idempotency key repeats that of one of the last
  /// 1000 clean messages, in [0, 1]. Default 0.05.
  double duplicate_ratio = 0.05;
  /// Share of messages with a malformed JSON payload, in [0, 1]. Default 0.001.
  double poison_ratio = 0.001;
  /// Share of messages with `"fail_attempts":1`, in [0, 1]. Default 0.01.
  double flaky_ratio = 0.01;
  std::uint32_t payload_bytes = 64; ///< Approximate payload size, bytes. Default 64.
  std::vector<std::string> topics = {"orders"}; ///< Topic of message i is topics[i % n].
  std::uint64_t seed = 42; ///< Seed of the deterministic draw. Default 42.
};

/// How many messages of each kind a generator published (or will publish).
///
/// The kinds are exclusive: a duplicate is always well-formed and not flaky,
/// and it repeats the key of a clean message (neither poison, flaky nor a
/// duplicate itself). So a correct engine handles `messages - duplicates`
/// distinct keys, dead-letters `poison` of them, sees `flaky` first-attempt
/// failures and deduplicates `duplicates` deliveries.
struct generator_counts {
  std::uint64_t messages = 0;   ///< Messages published.
  std::uint64_t poison = 0;     ///< Messages with a malformed payload.
  std::uint64_t flaky = 0;      ///< Messages whose first attempt should fail.
  std::uint64_t duplicates = 0; ///< Messages repeating an earlier message's key.

  /// Returns the number of distinct idempotency keys.
  std::uint64_t distinct_keys() const { return messages - duplicates; }
};

/// A thread that publishes a deterministic stream of synthetic messages into
/// a memory_transport, then closes its input.
///
/// Message i has id `m-<i>`, key `k-<i>` (or, for a duplicate, the key of an
/// earlier clean message), topic `topics[i % n]` and a JSON payload
/// `{"n":i,"fail_attempts":0|1,"pad":"xx…"}` padded to about
/// `payload_bytes`; a poison message's payload is cut off inside the pad
/// string. Messages go out in batches of 256, and the transport's capacity
/// holds memory flat however many messages are generated.
class generator_source {
public:
  /// Creates a generator publishing into `target`, which must outlive it.
  generator_source(memory_transport& target, generator_settings s = {});

  /// Stops the thread early if it still runs, then joins it.
  ~generator_source();

  generator_source(const generator_source&) = delete;
  generator_source& operator=(const generator_source&) = delete;

  /// Starts the publishing thread; a second call does nothing.
  void start();

  /// Asks the thread to stop after the batch it is publishing; it still
  /// closes the transport's input. Does not wait: call join().
  void stop();

  /// Waits for the thread to end (at once if it never started).
  void join();

  /// Returns true once the thread has closed the transport's input.
  bool finished() const { return finished_.load(std::memory_order_acquire); }

  /// Returns the number of messages published so far.
  std::uint64_t published() const { return published_.load(std::memory_order_relaxed); }

  /// Returns the kinds of the messages published so far; after join() of a
  /// run that was not stopped, this equals plan(settings()).
  generator_counts expected() const;

  /// Returns the settings the generator runs with.
  const generator_settings& settings() const { return settings_; }

  /// Returns the kinds a full run with `s` publishes, without publishing.
  static generator_counts plan(const generator_settings& s);

private:
  void run();

  memory_transport& target_;
  generator_settings settings_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> poison_{0};
  std::atomic<std::uint64_t> flaky_{0};
  std::atomic<std::uint64_t> duplicates_{0};
};

} // namespace mailroom
