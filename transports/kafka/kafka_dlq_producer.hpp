#pragma once

// The producer that writes dead-letter records to Kafka: a handle of its own
// (a consumer's handle cannot produce), each write waited for until its
// delivery report says it is on the broker, so the source offset is settled
// only once the record is safe.

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/io_result.hpp"
#include "transports/kafka/kafka_conf.hpp"

namespace mailroom::kafka {

/// One record to write: topic, key (null when `has_key` is false), value
/// and headers.
struct dlq_record {
  std::string topic;
  bool has_key = false;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Writes dead-letter records, one at a time, each confirmed by the broker.
/// Thread-safe (calls are serialised).
class dlq_producer {
public:
  /// Creates the producer from `props`; throws std::runtime_error (naming
  /// the property, never a secret) when librdkafka refuses them.
  explicit dlq_producer(const property_list& props);

  /// Flushes what is still queued (bounded) and destroys the handle.
  ~dlq_producer();

  dlq_producer(const dlq_producer&) = delete;
  dlq_producer& operator=(const dlq_producer&) = delete;

  /// Produces `r` and waits at most `timeout` for its delivery report.
  /// Returns success once the broker has it; a transient failure when the
  /// report is an error or did not come in time (the caller retries: the
  /// record may then be written twice, never lost).
  io_result write(const dlq_record& r, std::chrono::milliseconds timeout);

  /// Asks the brokers for their metadata, waiting at most `timeout`; returns
  /// why they did not answer, "" when they did. Not serialised with writes
  /// (librdkafka's calls are thread-safe): a probe never waits behind one.
  std::string unreachable(std::chrono::milliseconds timeout);

  /// Returns how many records `topics` hold (high minus low watermark over
  /// their partitions), or nullopt when the brokers do not answer in time.
  std::optional<std::uint64_t> depth(const std::vector<std::string>& topics,
                                     std::chrono::milliseconds timeout);

private:
  struct report; // one write's delivery report, filled by the callback
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*);

  std::mutex mutex_;
  rd_kafka_t* rk_ = nullptr;
};

} // namespace mailroom::kafka
