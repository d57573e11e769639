#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "clients/redis/redis_settings.hpp"

namespace mailroom {

/// Settings of a redis_streams_transport. Every field has its default and
/// unit beside it; an empty text means "derive the default" as described.
///
/// The stream, dead-letter, retry and error keys are used exactly as given:
/// `redis.key_prefix` does not apply to them, because producers and other
/// tools address a stream by its own name.
struct redis_streams_settings {
  /// Connection settings (host, port, AUTH, timeouts, reconnect backoff).
  /// The polling connection adds `block` to `command_timeout` so a blocking
  /// read never times out by itself.
  redis_settings redis;
  std::string stream;             ///< Stream to consume. Required.
  std::string group = "mailroom"; ///< Consumer group, created if missing.
  /// This instance's consumer name, unique in the group; empty derives
  /// `<hostname>-<pid>-<random hex>` (see default_consumer_name()).
  std::string consumer;
  /// Where a group created by the transport starts reading: "0" (default)
  /// takes every entry already in the stream, "$" only later ones.
  std::string group_start_id = "0";
  /// Entry field holding the payload bytes; an entry without it is
  /// malformed and dead-lettered by the transport. Empty: entries have no
  /// payload field, every field is a header. Default "payload".
  std::string payload_field = "payload";
  /// Entry field holding the idempotency key; when the field is missing or
  /// empty (or this setting is empty), the key is the entry id.
  std::string key_field = "key";
  /// Entry field holding the ordering key for `per_key` ordering; empty (the
  /// default) or a missing field orders by the idempotency key.
  std::string ordering_key_field;
  std::string topic; ///< Topic given to every envelope; empty means `stream`.
  /// Longest time one poll blocks in XREADGROUP, ms (the engine's poll wait
  /// is capped to it). Default 1000.
  std::chrono::milliseconds block{1000};
  /// An entry pending this long without being settled is taken to belong to
  /// a crashed or stuck consumer and taken over with XAUTOCLAIM, ms. Must
  /// exceed the handler timeout plus the time an entry may wait inside the
  /// engine, or live work is duplicated. Default 60000.
  std::chrono::milliseconds min_idle{60000};
  /// Pause between two XAUTOCLAIM passes over the pending entries list, ms;
  /// 0 (default) derives `min(min_idle / 2, 5000)`. A pass that has not
  /// reached the end of the list continues at the next poll.
  std::chrono::milliseconds recovery_interval{0};
  /// Longest pause between two looks for due retries (the retry set), ms.
  /// A busy consumer then spends its round trips on new entries: a poll
  /// reads only XREADGROUP until the pause is over. A retry this consumer
  /// scheduled itself is looked for when due regardless; one scheduled by
  /// another consumer is seen within this pause. 0 looks at every poll.
  /// Default 50.
  std::chrono::milliseconds retry_check_interval{50};
  /// An entry taken over by recovery whose delivery count exceeds this is
  /// handed to the engine as poison, to be dead-lettered with the reason
  /// "delivery count N exceeds M" (a message that crashes its consumer each
  /// time). 0 disables the check. Default 10.
  std::uint32_t max_deliveries = 10;
  std::string dlq_stream;  ///< Dead-letter stream; empty means `<stream>:dlq`.
  std::string retry_zset;  ///< Scheduled retries; empty means `<stream>:retry`.
  /// Deletes this consumer from the group at close() when it holds no
  /// pending entries, so restarts do not pile up consumer names. Default true.
  bool delete_consumer_on_close = true;
};

/// Returns a consumer name unique to this process: `<hostname>-<pid>-<8 hex>`.
std::string default_consumer_name();

/// Returns `s` with every derived default filled in (consumer, topic, keys,
/// recovery interval). Throws std::invalid_argument when `stream` or `group`
/// is empty.
redis_streams_settings resolve_defaults(redis_streams_settings s);

} // namespace mailroom
