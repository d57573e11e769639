#include "core/engine_config_schema.hpp"

#include <stdexcept>

#include "core/payload_mask.hpp"

namespace mailroom {

namespace {

// Bounds the in-flight budget (and everything sized by it: the queue, the
// lease groups) to what one process can hold; a poll asks for at most this.
constexpr std::uint64_t max_in_flight_limit = 1'000'000;
constexpr std::uint64_t max_batch_size = 100'000;
constexpr std::uint64_t max_workers = 1024;

setting_problem at_least(const std::string& key, const std::string& other, long long bound,
                         long long got) {
  return {key, "at least " + other + " (" + std::to_string(bound) + ")", std::to_string(got)};
}

} // namespace

const std::vector<std::pair<std::string, ordering_mode>>& ordering_names() {
  static const std::vector<std::pair<std::string, ordering_mode>> names{
      {"unordered", ordering_mode::unordered},
      {"per_key", ordering_mode::per_key},
      {"per_partition", ordering_mode::per_partition}};
  return names;
}

std::string to_string(ordering_mode m) {
  for (const auto& [name, value] : ordering_names()) {
    if (value == m) {
      return name;
    }
  }
  return "unknown";
}

const settings_schema<engine_settings>& engine_settings_schema() {
  using S = engine_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.integer("max_in_flight", &S::max_in_flight, 1, max_in_flight_limit,
              "Messages polled and not yet settled")
        .integer("workers", &S::workers, 1, max_workers,
                 "Long-lived workers, each with its own lane thread")
        .integer("batch_size", &S::batch_size, 1, max_batch_size,
                 "Most messages asked of one poll")
        .duration("poll_wait_ms", &S::poll_wait, 0, "Longest wait of one empty poll")
        .duration("handler_timeout_ms", &S::handler_timeout, 1,
                  "Longest handler call; then retry")
        .choice("ordering", &S::ordering, ordering_names(),
                "Spreading of messages over workers")
        .choice("unknown_topic", &S::unknown_topic,
                {{"ack", unknown_topic_policy::ack},
                 {"dead_letter", unknown_topic_policy::dead_letter}},
                "What happens to a message whose topic has no handler")
        .duration("drain_timeout_ms", &S::drain_timeout, 0, "Longest drain on SIGTERM")
        .duration("restart_backoff_base_ms", &S::restart_backoff_base, 1,
                  "First delay before restarting a crashed child")
        .duration("restart_backoff_cap_ms", &S::restart_backoff_cap, 1,
                  "Longest delay before a restart")
        .boolean("stop_when_exhausted", &S::stop_when_exhausted,
                 "Stop once a finite source is all settled")
        .rule([](const S& e) -> std::vector<setting_problem> {
          if (e.restart_backoff_cap >= e.restart_backoff_base) {
            return {};
          }
          return {at_least("restart_backoff_cap_ms", "engine.restart_backoff_base_ms",
                           e.restart_backoff_base.count(), e.restart_backoff_cap.count())};
        });
    return s;
  }();
  return schema;
}

const settings_schema<retry_settings>& retry_settings_schema() {
  using S = retry_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.duration("base_ms", &S::base, 0, "First step of the backoff")
        .duration("cap_ms", &S::cap, 0, "Upper bound of any retry delay")
        .integer("max_attempts", &S::max_attempts, 1, UINT32_MAX,
                 "Deliveries of a message before it is dead-lettered")
        .rule([](const S& r) -> std::vector<setting_problem> {
          if (r.cap >= r.base) {
            return {};
          }
          return {at_least("cap_ms", "retry.base_ms", r.base.count(), r.cap.count())};
        });
    return s;
  }();
  return schema;
}

const settings_schema<dedupe_settings>& dedupe_settings_schema() {
  using S = dedupe_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.boolean("enabled", &S::enabled, "Claim keys before handling")
        .choice("store", &S::store, std::vector<std::string>{"memory", "redis"},
                "Where idempotency claims live")
        .duration("claim_ttl_ms", &S::claim_ttl, 1, "Lifetime of a claim")
        .duration("result_ttl_ms", &S::result_ttl, 1, "How long a done key is remembered")
        .duration("in_flight_delay_ms", &S::in_flight_delay, 0,
                  "Hand-back delay for a key claimed elsewhere")
        .choice("on_store_error", &S::on_store_error,
                {{"fail_open", store_failure_policy::fail_open},
                 {"fail_closed", store_failure_policy::fail_closed}},
                "What dedupe does when the store cannot be asked")
        .duration("store_error_delay_ms", &S::store_error_delay, 0,
                  "Hand-back delay under fail_closed")
        .choice("scope", &S::scope,
                {{"topic", dedupe_scope::topic}, {"global", dedupe_scope::global}},
                "Which messages one key makes duplicates of");
    return s;
  }();
  return schema;
}

const settings_schema<sweeper_settings>& sweeper_settings_schema() {
  using S = sweeper_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.boolean("enabled", &S::enabled, "Record dispatches and sweep them")
        .choice("store", &S::store, std::vector<std::string>{"memory", "redis"},
                "Where dispatch records live")
        .duration("interval_ms", &S::interval, 1, "Time between ticks")
        .duration("stale_cutoff_ms", &S::stale_cutoff, 1, "Age of a stale pending marker")
        .integer("limit", &S::limit, 1, UINT32_MAX, "Most records of each kind per tick");
    return s;
  }();
  return schema;
}

const settings_schema<dead_letter_settings>& dead_letter_settings_schema() {
  using S = dead_letter_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.texts("mask_fields", &S::mask_fields, "JSON paths of values to mask",
            [](const std::string& p) -> setting_rejection {
              try {
                payload_mask{{p}};
              } catch (const std::invalid_argument& e) {
                return {"JSON paths such as \"$.card.number\"", e.what(), false};
              }
              return {};
            })
        .text("mask_regex", &S::mask_regex, "Regular expression whose matches are masked",
              [](const std::string& r) -> setting_rejection {
                try {
                  payload_mask{{}, r};
                } catch (const std::invalid_argument& e) {
                  return {"a valid ECMAScript regular expression", e.what(), false};
                }
                return {};
              })
        .text("mask_with", &S::mask_with, "Text that replaces every masked part")
        .choice("on_unparsable", &S::on_unparsable,
                {{"redact", unparsable_policy::redact},
                 {"regex", unparsable_policy::regex},
                 {"keep", unparsable_policy::keep}},
                "What happens to a payload that is not JSON while mask_fields is set");
    return s;
  }();
  return schema;
}

std::vector<setting_problem> engine_config_problems(const engine_config& cfg) {
  std::vector<setting_problem> out;
  auto timeout = cfg.engine.handler_timeout;
  if (cfg.dedupe.enabled) {
    for (auto& p : must_outlive_handler("dedupe.claim_ttl_ms", cfg.dedupe.claim_ttl, timeout,
                                        "so a claim outlives a handler call")) {
      out.push_back(std::move(p));
    }
  }
  if (cfg.sweeper.enabled) {
    for (auto& p :
         must_outlive_handler("sweeper.stale_cutoff_ms", cfg.sweeper.stale_cutoff, timeout,
                              "so a running handler is never swept")) {
      out.push_back(std::move(p));
    }
  }
  return out;
}

} // namespace mailroom
