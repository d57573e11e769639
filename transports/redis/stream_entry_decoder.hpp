#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <hiredis/hiredis.h>

#include "core/envelope.hpp"
#include "transports/redis/redis_streams_settings.hpp"

namespace mailroom {

/// Turns Redis stream entries into envelopes by the field mapping of a
/// redis_streams_settings.
///
/// An entry `id` with fields `f1 v1 f2 v2 ...` becomes an envelope with
/// `id` = `handle.handle` = the entry id, `payload` = the first value of the
/// payload field (empty when missing), `key` = the first non-empty value of
/// the key field or else the entry id, `ordering_key` = the ordering field's
/// value, `topic` = the configured topic, and every field except the payload
/// in `headers`, in entry order, repeated names included. Values are copied
/// byte for byte. An entry without the payload field is malformed: its
/// envelope carries `poison` (`entry has no "<field>" field`), unless the
/// payload field is configured as "", which puts every field in `headers`
/// and leaves `payload` empty.
class stream_entry_decoder {
public:
  /// Creates a decoder for the resolved settings `s`.
  explicit stream_entry_decoder(const redis_streams_settings& s);

  /// Returns the envelope of entry `id` whose field/value array is `fields`
  /// (a null or non-array reply gives an entry without fields), delivered
  /// for the `attempt`-th time; a malformed one carries `poison`.
  envelope decode(std::string_view id, const redisReply* fields,
                  std::uint32_t attempt) const;

  /// Appends the entries of an XREADGROUP reply (`[[stream, [[id, fields],
  /// ...]]]`, or nil when nothing arrived) to `out` as first deliveries,
  /// malformed ones included. Returns how many entries the reply held.
  std::size_t append_read_reply(const redisReply* reply, envelope_batch& out) const;

private:
  std::string topic_;
  std::string payload_field_;
  std::string key_field_;
  std::string ordering_key_field_;
};

} // namespace mailroom
