#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/step_mode.hpp"
#include "core/dedupe_key.hpp"
#include "core/handler.hpp"
#include "core/payload_mask.hpp"
#include "core/retry_policy.hpp"

namespace mailroom {

using std::chrono::milliseconds;

/// How messages are spread over workers.
enum class ordering_mode {
  unordered, ///< Any worker takes any message.
  per_key,   ///< Same ordering key strictly in order, different keys in parallel.
  /// Same topic and partition strictly in order (a Kafka consumer's
  /// guarantee), different partitions in parallel.
  per_partition,
};

/// What dedupe does when the idempotency store cannot be asked.
enum class store_failure_policy {
  fail_open,   ///< Process the message without a claim (risking a duplicate).
  fail_closed, ///< Hand the message back (nack) until the store answers.
};

/// Engine settings: the `[engine]` section of the TOML file.
struct engine_settings {
  std::uint32_t max_in_flight = 4096; ///< Messages polled and not yet settled.
  std::uint32_t workers = 4;      ///< Long-lived workers, each with its own lane thread.
  std::uint32_t batch_size = 256; ///< Most messages asked of one poll.
  milliseconds poll_wait{100};    ///< Longest wait of one empty poll, ms.
  milliseconds handler_timeout{30000}; ///< Longest handler call, ms; then retry.
  ordering_mode ordering =
      ordering_mode::unordered; ///< Spreading of messages over workers.
  unknown_topic_policy unknown_topic = unknown_topic_policy::dead_letter; ///< No handler.
  milliseconds drain_timeout{10000}; ///< Longest drain on SIGTERM, ms.
  milliseconds restart_backoff_base{
      100}; ///< First delay before restarting a crashed child.
  milliseconds restart_backoff_cap{5000}; ///< Longest delay before a restart.
  bool stop_when_exhausted = true;        ///< Stop once a finite source is all settled.
};

/// Dedupe settings: the `[dedupe]` section.
struct dedupe_settings {
  bool enabled = true;                ///< Claim keys before handling.
  /// Which idempotency store backs it: "memory" or "redis". The command's
  /// wiring reads it (an embedder passes the store itself). Default "memory".
  std::string store = "memory";
  milliseconds claim_ttl{60000};      ///< Lifetime of a claim, ms.
  milliseconds result_ttl{86400000};  ///< How long a done key is remembered, ms.
  milliseconds in_flight_delay{1000}; ///< Nack delay for a key claimed elsewhere, ms.
  store_failure_policy on_store_error =
      store_failure_policy::fail_closed; ///< Outage policy.
  milliseconds store_error_delay{1000};  ///< Nack delay under fail_closed, ms.
  /// Which messages a key makes duplicates of: the same topic (default) or
  /// every topic (`dedupe_key`).
  dedupe_scope scope = dedupe_scope::topic;
};

/// Sweeper settings: the `[sweeper]` section.
struct sweeper_settings {
  bool enabled = true;               ///< Record dispatches and sweep them.
  /// Which claim store keeps the records: "memory" or "redis" (read by the
  /// command's wiring, as `dedupe_settings::store`). Default "memory".
  std::string store = "memory";
  milliseconds interval{5000};       ///< Time between ticks, ms.
  milliseconds stale_cutoff{120000}; ///< Age of a stale pending marker, ms.
  std::uint32_t limit = 100;         ///< Most records of each kind per tick.
};

/// Dead-letter settings: the `[dead_letter]` section.
struct dead_letter_settings {
  std::vector<std::string> mask_fields; ///< JSON paths ("$.card.number") to mask.
  std::string mask_regex;               ///< Regex whose matches are masked.
  std::string mask_with = "***";        ///< Replacement text.
  /// What happens to a payload that is not JSON while `mask_fields` is set.
  unparsable_policy on_unparsable = unparsable_policy::redact;
};

/// Settings of durable steps (handlers registered with add_durable).
struct step_settings {
  step_mode mode = step_mode::batch; ///< When step checkpoints are written.
};

/// Everything the engine itself needs; transports and handlers are wired in
/// beside it.
struct engine_config {
  engine_settings engine;           ///< Pipeline sizing and timeouts.
  retry_settings retry;             ///< Message retry policy.
  dedupe_settings dedupe;           ///< Idempotency claims.
  sweeper_settings sweeper;         ///< Recovery sweeps.
  dead_letter_settings dead_letter; ///< DLQ masking.
  step_settings steps;              ///< Durable steps.
};

} // namespace mailroom
