#pragma once

// Test support: the command line of one `mailroom` deployment of a Kafka
// consumer group on the shared test broker (config/kafka.toml), for the
// suites that run the binary.

#include <string>
#include <utility>
#include <vector>

#include "tests/support/kafka_admin.hpp"

namespace mailroom::testing {

/// `mailroom <command> --config config/kafka.toml` on the shared broker:
/// topic `topic`, group `group`, the stores in memory unless `sets` says
/// otherwise, fast commits and group timings, then `sets`.
inline std::vector<std::string> kafka_run(const std::string& topic, const std::string& group,
                                          std::vector<std::string> sets,
                                          const char* command = "run") {
  std::vector<std::string> args{MAILROOM_BINARY, command, "--config",
                                std::string{MAILROOM_SOURCE_DIR} + "/config/kafka.toml"};
  std::vector<std::string> base{
      "transport.kafka.brokers=\"" + shared_broker().bootstrap() + "\"",
      "transport.kafka.topics=[\"" + topic + "\"]",
      "transport.kafka.group_id=\"" + group + "\"",
      "transport.kafka.commit_interval_ms=100",
      "transport.kafka.revoke_timeout_ms=3000",
      "transport.kafka.close_timeout_ms=5000",
      "transport.kafka.properties.\"session.timeout.ms\"=6000",
      "transport.kafka.properties.\"heartbeat.interval.ms\"=500",
      "progress.enabled=false",
      "log.level=\"info\"",
      "dedupe.store=\"memory\"",
      "sweeper.store=\"memory\"",
      "retry.base_ms=10",
      "retry.cap_ms=50",
      "engine.handler_timeout_ms=5000",
      "engine.drain_timeout_ms=5000"};
  base.insert(base.end(), sets.begin(), sets.end());
  for (auto& s : base) {
    args.push_back("--set");
    args.push_back(std::move(s));
  }
  return args;
}

} // namespace mailroom::testing
