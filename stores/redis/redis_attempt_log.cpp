#include "stores/redis/redis_attempt_log.hpp"

#include <algorithm>

#include "clients/redis/redis_pipeline.hpp"
#include "clients/redis/redis_reply.hpp"
#include "stores/redis/attempt_history_codec.hpp"

namespace mailroom {

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
  redis_command mget{"MGET"};
  mget.reserve(1 + ids.size());
  for (auto id : ids) {
    mget.push_back(key_of(id));
  }
  auto r = connection_.command(mget);
  if (!r) {
    return r.status;
  }
  const redisReply* reply = r.replies[0].get();
  if (!is_array_of(reply, ids.size())) {
    return io_result::fatal("redis attempt log: unexpected reply to MGET");
  }
  out.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const redisReply* v = reply->element[i];
    if (v->type == REDIS_REPLY_STRING) {
      out.push_back(decode_attempt_history(reply_text(v)));
    } else {
      out.emplace_back();
    }
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
    auto value = encode_attempt_history(*e.history);
    commands.add({std::string_view{"SET"}, std::string_view{key}, std::string_view{value},
                  std::string_view{"PX"}, std::string_view{ttl_ms_}});
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
