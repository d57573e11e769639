#include "transports/redis/stream_entry_decoder.hpp"

#include "clients/redis/redis_reply.hpp"

namespace mailroom {

stream_entry_decoder::stream_entry_decoder(const redis_streams_settings& s)
    : topic_(s.topic.empty() ? s.stream : s.topic), payload_field_(s.payload_field),
      key_field_(s.key_field), ordering_key_field_(s.ordering_key_field) {}

envelope stream_entry_decoder::decode(std::string_view id, const redisReply* fields,
                                      std::uint32_t attempt) const {
  envelope e;
  e.id.assign(id);
  e.topic = topic_;
  e.attempt = attempt;
  e.handle.handle = e.id;
  bool have_payload = false;
  bool have_ordering = false;
  if (fields != nullptr && fields->type == REDIS_REPLY_ARRAY) {
    for (std::size_t i = 0; i + 1 < fields->elements; i += 2) {
      auto name = reply_text(fields->element[i]);
      auto value = reply_text(fields->element[i + 1]);
      if (!have_payload && !payload_field_.empty() && name == payload_field_) {
        // The payload can be large: it is not duplicated into the headers.
        e.payload.assign(value);
        have_payload = true;
        continue;
      }
      if (e.key.empty() && !key_field_.empty() && name == key_field_) {
        e.key.assign(value);
      }
      if (!have_ordering && !ordering_key_field_.empty() && name == ordering_key_field_) {
        e.ordering_key.assign(value);
        have_ordering = true;
      }
      e.headers.emplace_back(std::string{name}, std::string{value});
    }
  }
  if (e.key.empty()) {
    e.key = e.id;
  }
  if (!have_payload && !payload_field_.empty()) {
    e.poison = "entry has no \"" + payload_field_ + "\" field";
  }
  return e;
}

std::size_t
stream_entry_decoder::append_read_reply(const redisReply* reply,
                                        envelope_batch& out) const {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
    return 0;
  }
  std::size_t n = 0;
  for (std::size_t s = 0; s < reply->elements; ++s) {
    const redisReply* stream = reply->element[s];
    if (!is_array_of(stream, 2) || stream->element[1]->type != REDIS_REPLY_ARRAY) {
      continue;
    }
    const redisReply* entries = stream->element[1];
    for (std::size_t i = 0; i < entries->elements; ++i) {
      const redisReply* entry = entries->element[i];
      if (!is_array_of(entry, 2)) {
        continue;
      }
      out.push_back(decode(reply_text(entry->element[0]), entry->element[1], 1));
      ++n;
    }
  }
  return n;
}

} // namespace mailroom
