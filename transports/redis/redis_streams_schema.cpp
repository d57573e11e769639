#include "transports/redis/redis_streams_schema.hpp"

#include <algorithm>

namespace mailroom {

namespace {

// What XGROUP CREATE takes as a start id: "$", or <ms>[-<seq>] in digits.
bool is_stream_start_id(const std::string& s) {
  if (s == "$") {
    return true;
  }
  auto digits = [](std::string_view d) {
    return !d.empty() && d.size() <= 20 &&
           std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  std::string_view v{s};
  auto dash = v.find('-');
  return dash == std::string_view::npos
             ? digits(v)
             : digits(v.substr(0, dash)) && digits(v.substr(dash + 1));
}

} // namespace

const settings_schema<redis_streams_settings>& redis_streams_schema() {
  using S = redis_streams_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    // Names Redis takes as given: NUL is the one byte that cannot pass.
    s.text("stream", &S::stream, "Stream to consume (required)",
           plain_text("a non-empty stream name (required when transport.type is \"redis\")"))
        .text("group", &S::group, "Consumer group, created if missing",
              plain_text("a non-empty consumer group name", true))
        .text("consumer", &S::consumer, "This instance's consumer name; \"\" generates one",
              plain_text("a consumer name without NUL, or \"\" to generate one"))
        .text("group_start_id", &S::group_start_id,
              "Where a group created here starts: \"0\" every entry, \"$\" only new ones",
              [](const std::string& v) -> setting_rejection {
                if (v.empty() || v.find('\0') != std::string::npos) {
                  return {"a stream id such as \"0\" (every entry) or \"$\" (only new ones)",
                          {}, false};
                }
                if (!is_stream_start_id(v)) {
                  return {"\"0\" (every entry), \"$\" (only new ones) or a stream id such as "
                          "\"1700000000000-0\"",
                          {}, false};
                }
                return {};
              })
        .text("payload_field", &S::payload_field, "Entry field holding the payload",
              plain_text("a field name without NUL, or \"\" for entries without a payload "
                         "field"))
        .text("key_field", &S::key_field, "Entry field holding the idempotency key",
              plain_text("a field name without NUL, or \"\" to key by entry id"))
        .text("ordering_key_field", &S::ordering_key_field,
              "Entry field holding the ordering key",
              plain_text("a field name without NUL, or \"\" to order by the idempotency key"))
        .text("topic", &S::topic, "Topic of every envelope; \"\" for the stream name",
              plain_text("a topic without NUL, or \"\" for the stream name"))
        .duration("block_ms", &S::block, 1, "Longest time one poll blocks in XREADGROUP")
        .duration("min_idle_ms", &S::min_idle, 1,
                  "Idle time after which an entry is taken over by recovery")
        .duration("recovery_interval_ms", &S::recovery_interval, 0,
                  "Pause between two recovery passes; 0 derives it")
        .duration("retry_check_interval_ms", &S::retry_check_interval, 0,
                  "Longest pause between two looks for due retries")
        .integer("max_deliveries", &S::max_deliveries, 0, UINT32_MAX,
                 "Deliveries after which recovery hands an entry over to be "
                 "dead-lettered; 0 never")
        .text("dlq_stream", &S::dlq_stream, "Dead-letter stream; \"\" for <stream>:dlq",
              plain_text("a stream name without NUL, or \"\" for \"<stream>:dlq\""))
        .text("retry_zset", &S::retry_zset, "Scheduled retries; \"\" for <stream>:retry",
              plain_text("a key without NUL, or \"\" for \"<stream>:retry\""))
        .boolean("delete_consumer_on_close", &S::delete_consumer_on_close,
                 "Delete this consumer from the group at close when it holds nothing");
    return s;
  }();
  return schema;
}

std::vector<setting_problem> redis_streams_problems(const redis_streams_settings& s,
                                                    const engine_config& engine) {
  std::vector<setting_problem> out;
  if (s.stream.empty()) {
    out.push_back({"stream", "a non-empty stream name (required when transport.type is "
                             "\"redis\")",
                   shown_value(s.stream)});
  }
  for (auto& p :
       must_outlive_handler("min_idle_ms", s.min_idle, engine.engine.handler_timeout,
                            "so XAUTOCLAIM never takes over an entry a handler still runs")) {
    out.push_back(std::move(p));
  }
  if (s.max_deliveries != 0 && s.max_deliveries < engine.retry.max_attempts) {
    out.push_back({"max_deliveries",
                   "0 or at least retry.max_attempts (" +
                       std::to_string(engine.retry.max_attempts) +
                       ") so an entry still within its retry budget is not dead-lettered "
                       "for its delivery count",
                   std::to_string(s.max_deliveries)});
  }
  // A dead-letter written to the stream it came from would be read and
  // dead-lettered again.
  for (auto [key, value] : {std::pair<const char*, const std::string*>{"dlq_stream",
                                                                        &s.dlq_stream},
                            {"retry_zset", &s.retry_zset}}) {
    if (!value->empty() && *value == s.stream) {
      out.push_back({key, "a key other than transport.redis.stream (" +
                              toml_quoted(s.stream) + ")",
                     shown_value(*value)});
    }
  }
  return out;
}

} // namespace mailroom
