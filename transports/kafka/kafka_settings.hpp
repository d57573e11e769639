#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/engine_config.hpp"

namespace mailroom {

/// Settings of a kafka_transport: the `[transport.kafka]` section. Every
/// field has its default and unit beside it.
struct kafka_settings {
  /// Bootstrap brokers, "host:port[,host:port...]". Required.
  std::string brokers;
  std::string group_id = "mailroom"; ///< Consumer group.
  std::vector<std::string> topics;   ///< Topics to consume. Required.
  std::string client_id = "mailroom"; ///< Client id the broker logs.
  /// Where a group without a committed offset starts: "earliest" or "latest".
  std::string auto_offset_reset = "earliest";
  /// Header whose value is the idempotency key; "" (or a record without it)
  /// uses `<topic>/<partition>/<offset>`. Default "".
  std::string key_header;
  /// What a message waiting for its retry holds back: its partition
  /// (`per_partition`, Kafka's guarantee), its key (`per_key`), or nothing.
  /// Also the engine's ordering when `engine.ordering` is left unordered.
  ordering_mode ordering = ordering_mode::per_partition;
  /// Longest time between two commits of settled offsets, ms. Default 1000.
  std::chrono::milliseconds commit_interval{1000};
  /// Commit as soon as this many messages settled since the last commit.
  /// Default 10000.
  std::uint32_t commit_max_messages = 10000;
  /// Dead-letter topic; "" means `<source topic>.dlq`. Default "".
  std::string dlq_topic;
  /// Deliveries after which a record is dead-lettered unhandled (a record
  /// that crashes its consumer every time); 0 disables. Counted in the
  /// attempt log: across restarts only when it is on Redis. Default 10.
  std::uint32_t max_deliveries = 10;
  /// Longest wait, at a rebalance, for the revoked partitions' running
  /// messages to settle before their offsets are committed, ms. Default 10000.
  std::chrono::milliseconds revoke_timeout{10000};
  /// Records buffered per partition before it is paused (it resumes at half).
  /// Default 2000.
  std::uint32_t buffer_per_partition = 2000;
  /// Longest close: the final commit and leaving the group, ms. Default 10000.
  std::chrono::milliseconds close_timeout{10000};
  /// Longest wait at start for the brokers to answer the topics' metadata,
  /// ms. Default 10000.
  std::chrono::milliseconds startup_timeout{10000};
  /// librdkafka properties passed through verbatim (SASL, TLS, timeouts).
  /// A value "env:NAME" is read from the environment variable NAME.
  std::vector<std::pair<std::string, std::string>> properties;
};

/// Returns the dead-letter topic of records from `topic`.
std::string dlq_topic_for(const kafka_settings& s, const std::string& topic);

} // namespace mailroom
