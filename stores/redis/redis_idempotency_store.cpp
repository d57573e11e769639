#include "stores/redis/redis_idempotency_store.hpp"

#include <algorithm>
#include <string>

#include <spdlog/spdlog.h>

#include "stores/redis/fence_replies.hpp"

namespace mailroom {

namespace {

// KEYS[i]: one per message. ARGV[1]: ttl ms; ARGV[1 + i]: token for KEYS[i].
// Per key: 1 = fresh, 0 = in flight, a string = done with that result. A key
// already holding its own token is fresh too: that is this very call
// repeated by the connection after its reply was lost.
constexpr const char* claim_lua = R"lua(
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[i + 1], 'NX', 'PX', ARGV[1]) then
    out[i] = 1
  else
    local v = redis.call('GET', key)
    local sep = v and string.sub(v, 1, 5) == 'done:' and string.find(v, ':', 6, true)
    if sep then
      out[i] = string.sub(v, sep + 1)
    elseif v == ARGV[i + 1] then
      out[i] = 1
    else
      out[i] = 0
    end
  end
end
return out
)lua";

// KEYS[i]: one per completion. ARGV[1]: ttl ms; ARGV[2i], ARGV[2i + 1]:
// token and result for KEYS[i]. Per key: 1 = applied, 0 = fenced.
constexpr const char* complete_lua = R"lua(
local out = {}
for i, key in ipairs(KEYS) do
  local token = ARGV[2 * i]
  local v = redis.call('GET', key)
  local done = 'done:' .. token .. ':'
  if v == token then
    redis.call('SET', key, done .. ARGV[2 * i + 1], 'PX', ARGV[1])
    out[i] = 1
  elseif v and string.sub(v, 1, #done) == done then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
)lua";

// KEYS[1]: the claim. ARGV[1]: its token. 1 = deleted, 0 = fenced.
constexpr const char* release_lua = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
)lua";

std::string ttl_arg(std::chrono::milliseconds ttl) {
  return std::to_string(std::max<std::chrono::milliseconds::rep>(ttl.count(), 1));
}

// The connection logs an outage once; what it cannot know is that the server
// answered and the answer was useless (an error reply, an unexpected shape).
void log_server_failure(const char* call, const redis_replies& r) {
  if (!r.replies.empty()) {
    spdlog::error("redis idempotency store: {} failed: {}", call,
                  r ? std::string{"unexpected reply"} : r.status.what);
  }
}

} // namespace

redis_idempotency_store::redis_idempotency_store(redis_settings settings)
    : connection_(std::move(settings)), claim_script_(connection_.add_script(claim_lua)),
      complete_script_(connection_.add_script(complete_lua)),
      release_script_(connection_.add_script(release_lua)), rng_(std::random_device{}()) {
}

std::string redis_idempotency_store::redis_key(std::string_view key) const {
  std::string name{"idem:"};
  name.append(key);
  return connection_.key(name);
}

fencing_token redis_idempotency_store::next_token() {
  std::lock_guard<std::mutex> lock{rng_mutex_};
  fencing_token t = 0;
  while (t == 0) {
    t = rng_();
  }
  return t;
}

std::vector<claim_result>
redis_idempotency_store::claim(const std::vector<std::string_view>& keys,
                               std::chrono::milliseconds ttl) {
  std::vector<claim_result> out(keys.size());
  if (keys.empty()) {
    return out;
  }
  std::vector<std::string> redis_keys;
  std::vector<std::string> args;
  redis_keys.reserve(keys.size());
  args.reserve(keys.size() + 1);
  args.push_back(ttl_arg(ttl));
  for (std::size_t i = 0; i < keys.size(); ++i) {
    redis_keys.push_back(redis_key(keys[i]));
    out[i].token = next_token();
    args.push_back(std::to_string(out[i].token));
  }
  auto r = connection_.evalsha(claim_script_, redis_keys, args);
  const redisReply* reply = r ? r.replies[0].get() : nullptr;
  if (!is_array_of(reply, keys.size())) {
    log_server_failure("claim", r);
    for (auto& c : out) {
      c = claim_result{};
    }
    return out;
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const redisReply* e = reply->element[i];
    claim_result& c = out[i];
    if (e->type == REDIS_REPLY_INTEGER && e->integer == 1) {
      c.status = claim_result::state::fresh;
      continue;
    }
    c.token = 0;
    if (e->type == REDIS_REPLY_STRING) {
      c.status = claim_result::state::done;
      c.result.assign(e->str, e->len);
    } else if (e->type == REDIS_REPLY_INTEGER) {
      c.status = claim_result::state::in_flight;
    } else {
      c.status = claim_result::state::unavailable;
    }
  }
  return out;
}

std::vector<fence_result>
redis_idempotency_store::complete(const std::vector<completion>& batch,
                                  std::chrono::milliseconds ttl) {
  if (batch.empty()) {
    return {};
  }
  std::vector<std::string> redis_keys;
  std::vector<std::string> args;
  redis_keys.reserve(batch.size());
  args.reserve(2 * batch.size() + 1);
  args.push_back(ttl_arg(ttl));
  for (const auto& c : batch) {
    redis_keys.push_back(redis_key(c.key));
    args.push_back(std::to_string(c.token));
    args.emplace_back(c.result);
  }
  auto r = connection_.evalsha(complete_script_, redis_keys, args);
  const redisReply* reply = r ? r.replies[0].get() : nullptr;
  std::vector<fence_result> out(batch.size(), fence_result::unavailable);
  if (!is_array_of(reply, batch.size())) {
    log_server_failure("complete", r);
    return out;
  }
  read_fence_replies(reply, out);
  return out;
}

fence_result redis_idempotency_store::release(std::string_view key, fencing_token token) {
  auto r =
      connection_.evalsha(release_script_, {redis_key(key)}, {std::to_string(token)});
  if (!r || r.replies[0]->type != REDIS_REPLY_INTEGER) {
    log_server_failure("release", r);
    return fence_result::unavailable;
  }
  return r.replies[0]->integer == 1 ? fence_result::applied : fence_result::fenced;
}

} // namespace mailroom
