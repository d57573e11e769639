#include "stores/redis/dispatch_record_codec.hpp"

#include <charconv>
#include <cstdint>
#include <iterator>
#include <vector>

namespace mailroom {

namespace {

void put_item(std::string& out, std::string_view item) {
  char len[24];
  auto end = std::to_chars(len, len + sizeof len, item.size()).ptr;
  out.append(len, end).append(1, ':').append(item);
}

template <class Int> void put_int(std::string& out, Int value) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  put_item(out, std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

// Takes one `<length>:<bytes>` item off the front of `in`.
bool take_item(std::string_view& in, std::string_view& item) {
  auto colon = in.find(':');
  std::size_t n = 0;
  if (colon == std::string_view::npos || colon == 0 ||
      std::from_chars(in.data(), in.data() + colon, n).ptr != in.data() + colon ||
      in.size() - colon - 1 < n) {
    return false;
  }
  item = in.substr(colon + 1, n);
  in.remove_prefix(colon + 1 + n);
  return true;
}

bool take_string(std::string_view& in, std::string& out) {
  std::string_view item;
  if (!take_item(in, item)) {
    return false;
  }
  out.assign(item);
  return true;
}

template <class Int> bool take_int(std::string_view& in, Int& value) {
  std::string_view text;
  if (!take_item(in, text) || text.empty()) {
    return false;
  }
  auto end = text.data() + text.size();
  auto r = std::from_chars(text.data(), end, value);
  return r.ec == std::errc{} && r.ptr == end;
}

bool take_time(std::string_view& in, const unix_time& time, clock::time_point& out) {
  std::int64_t ms = 0;
  if (!take_int(in, ms)) {
    return false;
  }
  out = time.from_unix_ms(ms);
  return true;
}

} // namespace

std::string dispatch_record_token_prefix(fencing_token token) {
  std::string out;
  put_int(out, token);
  return out;
}

std::string encode_dispatch_record(const dispatch_record& record, const unix_time& time) {
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
  std::string out;
  out.reserve(96 + m.id.size() + m.key.size() + m.topic.size() + m.ordering_key.size() +
              m.payload.size() + headers.size() + errors.size() + m.handle.handle.size());
  put_int(out, record.token); // first: see dispatch_record_token_prefix
  put_int(out, time.to_unix_ms(record.dispatched));
  put_int(out, time.to_unix_ms(record.claim_expires));
  put_item(out, m.id);
  put_item(out, m.key);
  put_item(out, m.topic);
  put_item(out, m.ordering_key);
  put_item(out, m.payload);
  put_item(out, headers);
  put_int(out, m.attempt);
  put_int(out, time.to_unix_ms(m.received));
  put_item(out, errors);
  put_int(out, m.handle.seq);
  put_int(out, m.handle.generation);
  put_int(out, m.handle.partition);
  put_int(out, m.handle.offset);
  put_item(out, m.handle.handle);
  // Last, so records written before it existed still decode (as 0).
  put_int(out, m.handle.assignment);
  return out;
}

bool decode_dispatch_record(std::string_view in, const unix_time& time,
                            dispatch_record& out) {
  envelope& m = out.message;
  std::string_view headers;
  std::string_view errors;
  bool ok = take_int(in, out.token) && take_time(in, time, out.dispatched) &&
            take_time(in, time, out.claim_expires) && take_string(in, m.id) &&
            take_string(in, m.key) && take_string(in, m.topic) &&
            take_string(in, m.ordering_key) && take_string(in, m.payload) &&
            take_item(in, headers) && take_int(in, m.attempt) &&
            take_time(in, time, m.received) && take_item(in, errors) &&
            take_int(in, m.handle.seq) && take_int(in, m.handle.generation) &&
            take_int(in, m.handle.partition) && take_int(in, m.handle.offset) &&
            take_string(in, m.handle.handle);
  m.handle.assignment = 0;
  if (ok && !in.empty()) {
    ok = take_int(in, m.handle.assignment);
  }
  ok = ok && in.empty();
  m.headers.clear();
  while (ok && !headers.empty()) {
    std::pair<std::string, std::string> h;
    ok = take_string(headers, h.first) && take_string(headers, h.second);
    m.headers.push_back(std::move(h));
  }
  m.attempt_errors.clear();
  while (ok && !errors.empty()) {
    std::string e;
    ok = take_string(errors, e);
    m.attempt_errors.push_back(std::move(e));
  }
  return ok;
}

std::string encode_dispatch_batch(const std::vector<const dispatch_record*>& records,
                                  const unix_time& time) {
  std::string out;
  put_int(out, records.size());
  for (const auto* r : records) {
    put_item(out, r->filed_under());
    put_item(out, encode_dispatch_record(*r, time));
  }
  return out;
}

bool decode_dispatch_batch(std::string_view in, const unix_time& time,
                           std::vector<dispatch_record>& out) {
  std::size_t count = 0;
  // Every record takes more than one byte: a larger count is corrupt, and
  // must not size an allocation.
  if (!take_int(in, count) || count > in.size()) {
    return false;
  }
  std::vector<dispatch_record> records(count);
  for (auto& r : records) {
    std::string_view value;
    if (!take_string(in, r.key) || !take_item(in, value) ||
        !decode_dispatch_record(value, time, r)) {
      return false;
    }
  }
  if (!in.empty()) {
    return false;
  }
  out.insert(out.end(), std::make_move_iterator(records.begin()),
             std::make_move_iterator(records.end()));
  return true;
}

} // namespace mailroom
