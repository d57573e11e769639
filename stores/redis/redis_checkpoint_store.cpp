#include "stores/redis/redis_checkpoint_store.hpp"

#include <algorithm>
#include <map>

namespace mailroom {

redis_checkpoint_store::redis_checkpoint_store(redis_settings settings,
                                               std::chrono::milliseconds ttl)
    : connection_(std::move(settings)),
      ttl_(std::to_string(std::max<std::chrono::milliseconds::rep>(ttl.count(), 1))) {}

std::string redis_checkpoint_store::redis_key(std::string_view key) const {
  std::string name{"ckpt:"};
  name.append(key);
  return connection_.key(name);
}

io_result redis_checkpoint_store::write(const std::vector<checkpoint>& batch) {
  if (batch.empty()) {
    return io_result::success();
  }
  // Group by key, keeping batch order within a key so a later write of the
  // same step wins, as it would one at a time.
  std::map<std::string_view, redis_command> by_key;
  for (const auto& c : batch) {
    auto& hset = by_key[c.key];
    if (hset.empty()) {
      hset = {"HSET", redis_key(c.key)};
    }
    hset.push_back(c.step);
    hset.push_back(c.result);
  }
  std::vector<redis_command> commands;
  commands.reserve(2 * by_key.size());
  for (auto& [key, hset] : by_key) {
    auto expire = redis_command{"PEXPIRE", hset[1], ttl_};
    commands.push_back(std::move(hset));
    commands.push_back(std::move(expire));
  }
  return connection_.pipeline(commands).status;
}

io_result redis_checkpoint_store::read(const std::string& key, const std::string& step,
                                       std::optional<std::string>& out) {
  auto r = connection_.command({"HGET", redis_key(key), step});
  if (!r) {
    return r.status;
  }
  const redisReply* reply = r.replies[0].get();
  if (reply->type == REDIS_REPLY_NIL) {
    out.reset();
  } else if (reply->type == REDIS_REPLY_STRING) {
    out.emplace(reply->str, reply->len);
  } else {
    return io_result::fatal("redis checkpoint store: unexpected HGET reply");
  }
  return io_result::success();
}

} // namespace mailroom
