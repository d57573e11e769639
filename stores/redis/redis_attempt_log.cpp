#include "stores/redis/redis_attempt_log.hpp"

#include <algorithm>
#include <charconv>

#include "clients/redis/redis_pipeline.hpp"
#include "clients/redis/redis_reply.hpp"
#include "stores/redis/attempt_history_codec.hpp"

namespace mailroom {

namespace {

template <class T> T number_of(const redisReply* r) {
  T v = 0;
  if (r != nullptr && r->type == REDIS_REPLY_INTEGER) {
    return static_cast<T>(r->integer);
  }
  auto text = reply_text(r);
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

// The history in an HMGET reply of d, e, f; nullopt when the hash is absent.
std::optional<attempt_history> history_of(const redisReply* r) {
  if (!is_array_of(r, 3) || (r->element[0]->type == REDIS_REPLY_NIL &&
                             r->element[1]->type == REDIS_REPLY_NIL)) {
    return std::nullopt;
  }
  attempt_history h;
  h.deliveries = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(number_of<std::uint64_t>(r->element[0]), UINT32_MAX));
  h.errors = decode_attempt_errors(reply_text(r->element[1]));
  h.first_failure_ms = number_of<std::int64_t>(r->element[2]);
  return h;
}

} // namespace

redis_attempt_log::redis_attempt_log(redis_settings settings, std::string scope,
                                     std::chrono::milliseconds ttl)
    : connection_(std::move(settings)),
      prefix_(connection_.key("attempts:" + scope + ":")),
      ttl_ms_(std::to_string(std::max<std::int64_t>(1, ttl.count()))) {}

std::string redis_attempt_log::key_of(std::string_view id) const {
  std::string key = prefix_;
  key.append(id);
  return key;
}

io_result redis_attempt_log::load(const std::vector<std::string_view>& ids,
                                  std::vector<std::optional<attempt_history>>& out) {
  out.clear();
  if (ids.empty()) {
    return io_result::success();
  }
  redis_pipeline commands;
  for (auto id : ids) {
    auto key = key_of(id);
    commands.add({"HMGET", key, "d", "e", "f"});
  }
  auto r = connection_.send(commands);
  if (!r) {
    return r.status;
  }
  out.reserve(ids.size());
  for (const auto& reply : r.replies) {
    out.push_back(history_of(reply.get()));
  }
  return io_result::success();
}

io_result redis_attempt_log::deliver(const std::vector<std::string_view>& ids,
                                     std::vector<attempt_history>& out) {
  out.clear();
  if (ids.empty()) {
    return io_result::success();
  }
  redis_pipeline commands;
  for (auto id : ids) {
    auto key = key_of(id);
    commands.add({"HINCRBY", key, "d", "1"});
    commands.add({"HMGET", key, "d", "e", "f"});
    commands.add({"PEXPIRE", key, ttl_ms_});
  }
  auto r = connection_.send(commands);
  if (!r) {
    return r.status;
  }
  out.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    out.push_back(history_of(r.replies[3 * i + 1].get()).value_or(attempt_history{1, {}, 0}));
  }
  return io_result::success();
}

io_result redis_attempt_log::record(const std::vector<attempt_entry>& entries) {
  if (entries.empty()) {
    return io_result::success();
  }
  redis_pipeline commands;
  for (const auto& e : entries) {
    auto key = key_of(e.id);
    auto d = std::to_string(e.history->deliveries);
    auto errors = encode_attempt_errors(e.history->errors);
    auto f = std::to_string(e.history->first_failure_ms);
    commands.add({"HSET", key, "d", d, "e", errors, "f", f});
    commands.add({"PEXPIRE", key, ttl_ms_});
  }
  return connection_.send(commands).status;
}

io_result redis_attempt_log::forget(const std::vector<std::string_view>& ids) {
  if (ids.empty()) {
    return io_result::success();
  }
  redis_command del{"DEL"};
  del.reserve(1 + ids.size());
  for (auto id : ids) {
    del.push_back(key_of(id));
  }
  return connection_.command(del).status;
}

} // namespace mailroom
