#include "transports/sqs/sqs_transport_schema.hpp"

#include "core/engine_config_schema.hpp"

namespace mailroom {

namespace {

text_check url_or_empty(std::string expected) {
  return [expected = std::move(expected)](const std::string& v) {
    bool ok = v.empty() || v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0;
    ok = ok && v.find('\0') == std::string::npos;
    return ok ? setting_rejection{} : setting_rejection{expected, {}, false};
  };
}

} // namespace

const settings_schema<sqs_transport_settings>& sqs_transport_schema() {
  using S = sqs_transport_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.text("queue_url", &S::queue_url, "URL of the queue; \"\" resolves queue_name",
           url_or_empty("an http(s) queue URL, or \"\" to resolve queue_name"))
        .text("queue_name", &S::queue_name,
              "Queue name resolved with GetQueueUrl when queue_url is \"\"",
              plain_text("a queue name without NUL, or \"\""))
        .text("queue_owner_account_id", &S::queue_owner_account_id,
              "Account owning queue_name; \"\" for the caller's",
              plain_text("an account id without NUL, or \"\""))
        .text("region", &S::region, "Region signed into requests; \"\" reads AWS_REGION",
              plain_text("a region name without NUL, or \"\""))
        .text("endpoint_url", &S::endpoint_url,
              "Endpoint of an SQS-compatible server; \"\" for AWS",
              url_or_empty("an http(s) URL, or \"\" for https://sqs.<region>.amazonaws.com"))
        .text("profile", &S::profile,
              "Shared-credentials profile when AWS_ACCESS_KEY_ID is unset; \"\" for "
              "AWS_PROFILE",
              plain_text("a profile name without NUL, or \"\""))
        .integer("wait_time_s", &S::wait_time_s, 0, 20,
                 "Long-poll wait of one ReceiveMessage", "seconds")
        .integer("max_messages", &S::max_messages, 1, 10,
                 "Messages asked for by one ReceiveMessage")
        .integer("receivers", &S::receivers, 1, 64,
                 "Concurrent long polls, each on its own thread and connection")
        .integer("visibility_timeout_s", &S::visibility_timeout_s, 1, 43200,
                 "Visibility timeout of received messages and of each extension", "seconds")
        .integer("heartbeat_interval_s", &S::heartbeat_interval_s, 0, 14400,
                 "How often held messages' visibility is extended; 0 turns it off",
                 "seconds")
        .text("dlq_queue_url", &S::dlq_queue_url,
              "Dead-letter queue URL; \"\" leaves dead-letters to the redrive policy",
              url_or_empty("an http(s) queue URL, or \"\" for the queue's redrive policy"))
        .text("key_attribute", &S::key_attribute,
              "Message attribute holding the idempotency key; \"\" uses the MessageId",
              plain_text("an attribute name without NUL, or \"\""))
        .integer("max_receives", &S::max_receives, 0, 1'000'000,
                 "Receives after which a message is dead-lettered unhandled; 0 never")
        .integer("request_timeout_ms", &S::request_timeout_ms, 100, 600'000,
                 "Bound of one HTTP request (a long poll adds its wait)", "milliseconds")
        .integer("startup_timeout_ms", &S::startup_timeout_ms, 1, 600'000,
                 "Longest wait at start for the server to answer", "milliseconds");
    return s;
  }();
  return schema;
}

std::vector<setting_problem> sqs_transport_problems(const sqs_transport_settings& s,
                                                    const engine_config& engine) {
  std::vector<setting_problem> out;
  if (s.queue_url.empty() && s.queue_name.empty()) {
    out.push_back({"queue_url",
                   "a queue URL, or queue_name (required when transport.type is \"sqs\")",
                   shown_value(s.queue_url)});
  }
  if (!s.queue_url.empty() && !s.queue_name.empty()) {
    out.push_back({"queue_name", "\"\" when queue_url is set (one of them names the queue)",
                   shown_value(s.queue_name)});
  }
  if (effective_region(s).empty()) {
    out.push_back({"region",
                   "a region, or AWS_REGION set (required without endpoint_url)",
                   shown_value(s.region)});
  }
  if (!s.dlq_queue_url.empty() && s.dlq_queue_url == s.queue_url) {
    out.push_back({"dlq_queue_url", "a queue other than queue_url",
                   shown_value(s.dlq_queue_url)});
  }
  if (s.heartbeat_interval_s != 0 && s.heartbeat_interval_s * 3 > s.visibility_timeout_s) {
    out.push_back({"heartbeat_interval_s",
                   "0, or at most a third of visibility_timeout_s (" +
                       std::to_string(s.visibility_timeout_s) +
                       ") so an extension comes before the visibility runs out",
                   std::to_string(s.heartbeat_interval_s)});
  }
  // Every hand-back is a receive too: with a shared (Redis) dedupe store, a
  // message whose key a consumer that died still claims is handed back every
  // in_flight_delay_ms until the claim expires, and must not reach the limit
  // meanwhile.
  const auto& dedupe = engine.dedupe;
  if (s.max_receives != 0 && dedupe.enabled && dedupe.store == "redis" &&
      dedupe.in_flight_delay.count() > 0) {
    auto waits = static_cast<std::uint64_t>(
        (dedupe.claim_ttl.count() + dedupe.in_flight_delay.count() - 1) /
        dedupe.in_flight_delay.count());
    auto needed = engine.retry.max_attempts + waits;
    if (s.max_receives < needed) {
      out.push_back({"max_receives",
                     "0 or at least " + std::to_string(needed) +
                         " (retry.max_attempts + dedupe.claim_ttl_ms / "
                         "dedupe.in_flight_delay_ms): a message claimed by a consumer that "
                         "died is received again every in_flight_delay_ms until its claim "
                         "expires, and would be dead-lettered unhandled",
                     std::to_string(s.max_receives)});
      return out;
    }
  }
  if (s.max_receives != 0 && s.max_receives < engine.retry.max_attempts) {
    out.push_back({"max_receives",
                   "0 or at least retry.max_attempts (" +
                       std::to_string(engine.retry.max_attempts) +
                       ") so a message within its retry budget is not dead-lettered for its "
                       "receive count",
                   std::to_string(s.max_receives)});
  }
  return out;
}

} // namespace mailroom
