#pragma once

// The Kafka dead-letter topics as `mailroom dlq` sees them.
//
// A topic is an immutable log: one record cannot be taken out of it. What
// was replayed or purged is therefore marked in a compacted topic beside the
// dead-letter topic, `<dlq topic>.settled` (key: the record's id, value
// "replayed" or "purged"), and every listing leaves marked records out. A
// replay writes the record back to its source topic and writes its mark in
// one Kafka transaction, so after a kill -9 both are there or neither
// (consumers read committed records only, librdkafka's default): a record
// is replayed or still in the DLQ, never both, never lost. A transaction
// carries up to `changes_per_commit()` records: one per record would cost
// a commit round trip each.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/dead_letter_queue.hpp"
#include "transports/kafka/kafka_settings.hpp"

namespace mailroom {

class kafka_dlq final : public dead_letter_queue {
public:
  /// Clears the dedupe state of idempotency key `key` of a message of
  /// `topic`, so that its replay is not deduped away; throws when it cannot.
  using key_eraser = std::function<void(const std::string& topic, const std::string& key)>;

  /// Connects to `settings.brokers`, starts the transactional producer
  /// (which aborts what a killed earlier replay left open) and checks that
  /// the dead-letter topics exist. `forget` may be empty (no shared dedupe
  /// store). Throws std::runtime_error naming what failed.
  kafka_dlq(kafka_settings settings, key_eraser forget);
  ~kafka_dlq() override;

  std::string describe() const override;
  void for_each(const std::function<bool(const dlq_record&)>& visit) override;
  bool find(const std::string& id, dlq_record& out) override;
  dlq_change replay(const dlq_record& r) override;
  dlq_change remove(const dlq_record& r) override;
  void commit() override;
  std::size_t changes_per_commit() const override;

  /// Returns the topic the marks of `dlq_topic` are written to.
  static std::string settled_topic_of(const std::string& dlq_topic);

private:
  struct clients; // the consumer that reads, the producer that writes
  std::unique_ptr<clients> c_;
};

} // namespace mailroom
