#pragma once

// How a dead-letter record is laid out in an SQS queue: written by the
// transport when it parks a message, read back by `mailroom dlq`, and the
// attributes a replay adds that the transport reads when the replayed
// message comes back. Writer and reader share this file so they cannot
// drift apart.
//
// SQS allows 10 message attributes on a message and the record's own take
// up to 9, so the parked message's attributes and message group travel
// packed into one, `mailroom.original` (JSON).

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mailroom::sqs_dlq_format {

inline constexpr const char* reason = "mailroom.reason";
inline constexpr const char* attempts = "mailroom.attempts";
inline constexpr const char* errors = "mailroom.errors";
inline constexpr const char* source_queue = "mailroom.source.queue";
inline constexpr const char* source_message_id = "mailroom.source.message_id";
inline constexpr const char* first_failure_ms = "mailroom.first_failure_ms";
inline constexpr const char* key = "mailroom.key";
inline constexpr const char* dead_lettered_at_ms = "mailroom.dead_lettered_at_ms";
/// "empty" (SQS cannot carry an empty body: a space stands in) or "base64"
/// (bytes SQS cannot carry); absent: the body as it was.
inline constexpr const char* body = "mailroom.body";
inline constexpr const char* original = "mailroom.original";

/// Added by a replay: how often the message was replayed, and the id of the
/// DLQ record it was replayed from.
inline constexpr const char* replayed = "mailroom.replayed";
inline constexpr const char* replay_of = "mailroom.replay_of";

using attribute_list = std::vector<std::pair<std::string, std::string>>;

/// The parked message's own attributes (as text) and its message group.
struct original_message {
  attribute_list attributes;
  std::string group_id;
};

/// Returns `m` as the value of `mailroom.original`; "" when it has neither
/// attributes nor a group (the attribute is then left out).
std::string pack(const original_message& m);

/// Reads a `mailroom.original` value back; nullopt when it is not one.
std::optional<original_message> unpack(const std::string& text);

/// Returns the idempotency key of a message carrying `attributes`, when it
/// is a replay: its key attribute's value `attribute_key` (or, when that is
/// empty, the DLQ record's id) followed by "/replay/<count>". Two copies of
/// one replay (a replay killed between writing the copy and removing the
/// record writes it again when rerun) share the key, so dedupe handles it
/// once; the next replay of the same record gets a new one. nullopt when
/// the message is no replay.
std::optional<std::string> replay_key(const attribute_list& attributes,
                                      const std::string& attribute_key);

std::string base64_encode(const std::string& data);

/// Decodes standard base64 (with padding); nullopt when `text` is not.
std::optional<std::string> base64_decode(const std::string& text);

} // namespace mailroom::sqs_dlq_format
