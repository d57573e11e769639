#include "transports/kafka/kafka_schema.hpp"

#include "core/engine_config_schema.hpp"
#include "transports/kafka/kafka_conf.hpp"

namespace mailroom {

namespace {

// librdkafka's default max.poll.interval.ms, unless a property sets it.
std::uint64_t poll_interval_ms(const kafka_settings& s) {
  for (const auto& [name, value] : s.properties) {
    if (name == "max.poll.interval.ms") {
      try {
        return std::stoull(value);
      } catch (const std::exception&) {
        return 300000; // a bad value is reported by librdkafka's own check
      }
    }
  }
  return 300000;
}

} // namespace

const settings_schema<kafka_settings>& kafka_schema() {
  using S = kafka_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.text("brokers", &S::brokers, "Bootstrap brokers, host:port[,host:port...] (required)",
           plain_text("host:port of at least one broker (required when transport.type is "
                      "\"kafka\")"))
        .text("group_id", &S::group_id, "Consumer group",
              plain_text("a non-empty consumer group id", true))
        .texts("topics", &S::topics, "Topics to consume (required)",
               plain_text("non-empty topic names", true))
        .text("client_id", &S::client_id, "Client id the brokers log",
              plain_text("a client id without NUL"))
        .choice("auto_offset_reset", &S::auto_offset_reset, {"earliest", "latest"},
                "Where a group without a committed offset starts")
        .text("key_header", &S::key_header,
              "Header holding the idempotency key; \"\" uses <topic>/<partition>/<offset>",
              plain_text("a header name without NUL, or \"\""))
        .choice("ordering", &S::ordering, ordering_names(),
                "What a message waiting for its retry holds back; the engine's default")
        .duration("commit_interval_ms", &S::commit_interval, 1,
                  "Longest time between two commits of settled offsets")
        .integer("commit_max_messages", &S::commit_max_messages, 1, 10'000'000,
                 "Commit once this many messages settled since the last commit")
        .text("dlq_topic", &S::dlq_topic, "Dead-letter topic; \"\" for <topic>.dlq",
              plain_text("a topic name without NUL, or \"\" for \"<topic>.dlq\""))
        .integer("max_deliveries", &S::max_deliveries, 0, 1'000'000,
                 "Deliveries after which a record is dead-lettered unhandled; 0 never")
        .duration("revoke_timeout_ms", &S::revoke_timeout, 0,
                  "Longest wait at a rebalance for the revoked partitions' running work")
        .integer("buffer_per_partition", &S::buffer_per_partition, 1, 1'000'000,
                 "Records buffered per partition before it is paused")
        .duration("close_timeout_ms", &S::close_timeout, 1,
                  "Longest close: final commit and leaving the group")
        .duration("startup_timeout_ms", &S::startup_timeout, 1,
                  "Longest wait at start for the brokers to answer")
        .text_table("properties", &S::properties,
                    "librdkafka properties, passed verbatim; \"env:NAME\" reads NAME",
                    plain_text("a librdkafka property name", true));
    return s;
  }();
  return schema;
}

std::vector<setting_problem> kafka_problems(const kafka_settings& s,
                                            const engine_config& engine) {
  std::vector<setting_problem> out;
  if (s.brokers.empty()) {
    out.push_back({"brokers",
                   "host:port of at least one broker (required when transport.type is "
                   "\"kafka\")",
                   shown_value(s.brokers)});
  }
  if (s.topics.empty()) {
    out.push_back({"topics", "at least one topic (required when transport.type is \"kafka\")",
                   "[]"});
  }
  auto props = kafka::property_problems(s);
  out.insert(out.end(), props.begin(), props.end());
  if (s.max_deliveries != 0 && s.max_deliveries < engine.retry.max_attempts) {
    out.push_back({"max_deliveries",
                   "0 or at least retry.max_attempts (" +
                       std::to_string(engine.retry.max_attempts) +
                       ") so a record within its retry budget is not dead-lettered for its "
                       "delivery count",
                   std::to_string(s.max_deliveries)});
  }
  auto interval = poll_interval_ms(s);
  if (static_cast<std::uint64_t>(s.revoke_timeout.count()) >= interval) {
    out.push_back({"revoke_timeout_ms",
                   "less than max.poll.interval.ms (" + std::to_string(interval) +
                       ") so waiting at a rebalance does not cost the group membership",
                   std::to_string(s.revoke_timeout.count())});
  }
  if (engine.engine.ordering != ordering_mode::unordered &&
      engine.engine.ordering != s.ordering) {
    out.push_back({"ordering",
                   "the same mode as engine.ordering (" + to_string(engine.engine.ordering) +
                       "), or engine.ordering left \"unordered\" to take this one",
                   toml_quoted(to_string(s.ordering))});
  }
  return out;
}

} // namespace mailroom
