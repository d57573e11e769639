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

io_result redis_checkpoint_store::load(const std::string& key, std::vector<checkpoint>& out) {
  // HSCAN, not HGETALL: a small hash (the usual few steps) comes back whole
  // in the first call; a large one in pages, never in one huge reply that
  // blocks Redis.
  auto name = redis_key(key);
  std::vector<checkpoint> found;
  std::string cursor = "0";
  do {
    auto r = connection_.command({"HSCAN", name, cursor, "COUNT", "1000"});
    if (!r) {
      return r.status;
    }
    const redisReply* reply = r.replies[0].get();
    if (reply->type == REDIS_REPLY_ERROR) {
      return io_result::fatal("redis checkpoint store: HSCAN " + name + ": " +
                              std::string{reply->str, reply->len});
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
      return io_result::fatal("redis checkpoint store: unexpected HSCAN reply for " + name);
    }
    cursor.assign(reply->element[0]->str, reply->element[0]->len);
    const redisReply* items = reply->element[1];
    for (std::size_t i = 0; i + 1 < items->elements; i += 2) {
      found.push_back({key, std::string{items->element[i]->str, items->element[i]->len},
                       std::string{items->element[i + 1]->str, items->element[i + 1]->len}});
    }
  } while (cursor != "0");
  // HSCAN may return a field twice across pages: the last copy stands.
  std::map<std::string, std::size_t> last;
  for (std::size_t i = 0; i < found.size(); ++i) {
    last[found[i].step] = i;
  }
  out.clear();
  out.reserve(last.size());
  for (const auto& [step, i] : last) {
    out.push_back(std::move(found[i]));
  }
  return io_result::success();
}

} // namespace mailroom
