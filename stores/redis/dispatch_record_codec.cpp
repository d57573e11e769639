#include "stores/redis/dispatch_record_codec.hpp"

#include <charconv>
#include <cstdint>
#include <string_view>

namespace mailroom {

namespace {

void put_item(std::string& out, std::string_view item) {
  out.append(std::to_string(item.size())).append(1, ':').append(item);
}

// Takes one `<length>:<bytes>` item off the front of `in`.
bool take_item(std::string_view& in, std::string& item) {
  auto colon = in.find(':');
  std::size_t n = 0;
  if (colon == std::string_view::npos ||
      std::from_chars(in.data(), in.data() + colon, n).ptr != in.data() + colon ||
      in.size() - colon - 1 < n) {
    return false;
  }
  item.assign(in.substr(colon + 1, n));
  in.remove_prefix(colon + 1 + n);
  return true;
}

template <class Int>
bool parse_int(std::string_view text, Int& value) {
  auto end = text.data() + text.size();
  auto r = std::from_chars(text.data(), end, value);
  return !text.empty() && r.ec == std::errc{} && r.ptr == end;
}

} // namespace

std::vector<std::string> encode_dispatch_record(const dispatch_record& record,
                                                const unix_time& time) {
  const envelope& m = record.message;
  std::string headers;
  for (const auto& [name, value] : m.headers) {
    put_item(headers, name);
    put_item(headers, value);
  }
  std::string errors;
  for (const auto& e : m.attempt_errors) {
    put_item(errors, e);
  }
  return {"token",      std::to_string(record.token),
          "dispatched", std::to_string(time.to_unix_ms(record.dispatched)),
          "expires",    std::to_string(time.to_unix_ms(record.claim_expires)),
          "id",         m.id,
          "key",        m.key,
          "topic",      m.topic,
          "ordering_key", m.ordering_key,
          "payload",    m.payload,
          "headers",    std::move(headers),
          "attempt",    std::to_string(m.attempt),
          "received",   std::to_string(time.to_unix_ms(m.received)),
          "errors",     std::move(errors),
          "r_seq",      std::to_string(m.handle.seq),
          "r_gen",      std::to_string(m.handle.generation),
          "r_part",     std::to_string(m.handle.partition),
          "r_off",      std::to_string(m.handle.offset),
          "r_handle",   m.handle.handle};
}

bool decode_dispatch_record(const redisReply* fields, const unix_time& time,
                            dispatch_record& out) {
  if (fields == nullptr || fields->type != REDIS_REPLY_ARRAY || fields->elements == 0 ||
      fields->elements % 2 != 0) {
    return false;
  }
  constexpr unsigned all_fields = (1u << 17) - 1;
  unsigned seen = 0;
  bool ok = true;
  std::int64_t ms = 0;
  envelope& m = out.message;
  for (std::size_t i = 0; i + 1 < fields->elements && ok; i += 2) {
    auto name = reply_text(fields->element[i]);
    auto value = reply_text(fields->element[i + 1]);
    if (name == "token") {
      ok = parse_int(value, out.token);
      seen |= 1u << 0;
    } else if (name == "dispatched") {
      ok = parse_int(value, ms);
      out.dispatched = time.from_unix_ms(ms);
      seen |= 1u << 1;
    } else if (name == "expires") {
      ok = parse_int(value, ms);
      out.claim_expires = time.from_unix_ms(ms);
      seen |= 1u << 2;
    } else if (name == "id") {
      m.id.assign(value);
      seen |= 1u << 3;
    } else if (name == "key") {
      m.key.assign(value);
      seen |= 1u << 4;
    } else if (name == "topic") {
      m.topic.assign(value);
      seen |= 1u << 5;
    } else if (name == "ordering_key") {
      m.ordering_key.assign(value);
      seen |= 1u << 6;
    } else if (name == "payload") {
      m.payload.assign(value);
      seen |= 1u << 7;
    } else if (name == "headers") {
      m.headers.clear();
      std::pair<std::string, std::string> h;
      while (ok && !value.empty()) {
        ok = take_item(value, h.first) && take_item(value, h.second);
        m.headers.push_back(h);
      }
      seen |= 1u << 8;
    } else if (name == "attempt") {
      ok = parse_int(value, m.attempt);
      seen |= 1u << 9;
    } else if (name == "received") {
      ok = parse_int(value, ms);
      m.received = time.from_unix_ms(ms);
      seen |= 1u << 10;
    } else if (name == "errors") {
      m.attempt_errors.clear();
      std::string e;
      while (ok && !value.empty()) {
        ok = take_item(value, e);
        m.attempt_errors.push_back(e);
      }
      seen |= 1u << 11;
    } else if (name == "r_seq") {
      ok = parse_int(value, m.handle.seq);
      seen |= 1u << 12;
    } else if (name == "r_gen") {
      ok = parse_int(value, m.handle.generation);
      seen |= 1u << 13;
    } else if (name == "r_part") {
      ok = parse_int(value, m.handle.partition);
      seen |= 1u << 14;
    } else if (name == "r_off") {
      ok = parse_int(value, m.handle.offset);
      seen |= 1u << 15;
    } else if (name == "r_handle") {
      m.handle.handle.assign(value);
      seen |= 1u << 16;
    }
  }
  return ok && seen == all_fields;
}

} // namespace mailroom
