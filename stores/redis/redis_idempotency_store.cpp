#include "stores/redis/redis_idempotency_store.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "stores/redis/fence_replies.hpp"

namespace mailroom {

namespace {

// KEYS[i]: one per completion. ARGV[1]: the result's ttl ms; ARGV[2i],
// ARGV[2i + 1]: the token for KEYS[i] and its done value
// (`done:<token>:<result>`, built by the caller: a string made in Lua is
// hashed and interned). Per key: 1 = applied, 0 = fenced. A GET before the
// SET, not a `SET ... XX GET` written back when fenced: the write-back could
// not restore another claim's own TTL.
constexpr const char* complete_lua = R"lua(
local out = {}
for i, key in ipairs(KEYS) do
  local token = ARGV[2 * i]
  local v = redis.call('GET', key)
  if v == token then
    redis.call('SET', key, ARGV[2 * i + 1], 'PX', ARGV[1])
    out[i] = 1
  elseif v and string.sub(v, 1, 5 + #token + 1) == 'done:' .. token .. ':' then
    out[i] = 1 -- a repeat of an applied complete: the first result stays
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

// KEYS[i]: a claim whose outcome was never learnt. ARGV[i]: its token.
// Deletes each that still holds its token; returns how many it deleted.
constexpr const char* release_all_lua = R"lua(
local n = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
)lua";

// Claims whose outcome is unknown are remembered up to this many; beyond it
// the oldest are left to expire by their TTL.
constexpr std::size_t max_unresolved = 1 << 20;

// Returns the result stored in a `done:<token>:<result>` value, if `value`
// is one.
std::optional<std::string_view> done_result(std::string_view value) {
  constexpr std::string_view prefix{"done:"};
  if (value.substr(0, prefix.size()) != prefix) {
    return std::nullopt;
  }
  auto sep = value.find(':', prefix.size());
  if (sep == std::string_view::npos) {
    return std::nullopt;
  }
  return value.substr(sep + 1);
}

// Returns the token a live claim's value holds, 0 when it holds none.
fencing_token parse_token(std::string_view value) {
  fencing_token t = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), t);
  return ec == std::errc{} && end == value.data() + value.size() ? t : 0;
}

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
    : connection_(std::move(settings)),
      complete_script_(connection_.add_script(complete_lua)),
      release_script_(connection_.add_script(release_lua)),
      release_all_script_(connection_.add_script(release_all_lua)),
      key_prefix_(connection_.key("idem:")), rng_(std::random_device{}()) {}

std::string redis_idempotency_store::redis_key(std::string_view key) const {
  return key_prefix_ + std::string{key};
}

fencing_token redis_idempotency_store::next_token() {
  std::lock_guard<std::mutex> lock{rng_mutex_};
  fencing_token t = 0;
  // 63 bits: Redis keeps a value that fits a signed 64-bit integer as that
  // integer, without allocating a string for it.
  while (t == 0) {
    t = rng_() >> 1;
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
  resolve_unknown_claims();
  // One `SET key token NX PX ttl GET` per key, pipelined: the reply is nil
  // when the key was absent (the claim is ours) and the previous value
  // otherwise. NX with GET needs Redis 7.0.
  const std::string ttl_ms = ttl_arg(ttl);
  redis_pipeline commands;
  std::string name;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    out[i].token = next_token();
    char token[24];
    auto token_end = std::to_chars(token, token + sizeof token, out[i].token).ptr;
    name.assign(key_prefix_);
    name.append(keys[i]);
    commands.add({"SET", name, std::string_view(token, token_end - token), "NX", "PX",
                  ttl_ms, "GET"});
  }
  auto r = connection_.send(commands);
  if (!r) {
    log_server_failure("claim", r);
    if (r.status.what.find("syntax error") != std::string::npos) {
      spdlog::error("redis idempotency store: the server refused SET NX GET; it needs "
                    "Redis 7.0 or later");
    }
  }
  if (r.replies.size() != keys.size()) {
    // The SETs may have run with their replies lost: the keys would stay
    // claimed by tokens nobody holds until the TTL. Remember them, so the
    // first call that reaches Redis again releases them.
    if (r.status.failure == failure_class::transient) {
      for (std::size_t i = 0; i < keys.size(); ++i) {
        remember_orphan(keys[i], out[i].token);
      }
    }
    for (auto& c : out) {
      c = claim_result{};
    }
    return out;
  }
  // The SETs of a pipeline are not one transaction: an error reply for one
  // key (a value of another type under it) leaves the others claimed, so
  // each key keeps its own answer.
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const redisReply* e = r.replies[i].get();
    claim_result& c = out[i];
    if (e->type == REDIS_REPLY_NIL) {
      c.status = claim_result::state::fresh;
      continue;
    }
    const std::string_view held = e->type == REDIS_REPLY_STRING
                                      ? std::string_view{e->str, e->len}
                                      : std::string_view{};
    // A key already holding the token offered for it was set by this very
    // call, repeated by the connection after its first reply was lost.
    if (parse_token(held) == c.token) {
      c.status = claim_result::state::fresh;
      continue;
    }
    c.token = 0;
    if (auto result = done_result(held)) {
      c.status = claim_result::state::done;
      c.result.assign(result->data(), result->size());
    } else if (e->type == REDIS_REPLY_STRING) {
      c.status = claim_result::state::in_flight;
    } else {
      c.status = claim_result::state::unavailable;
    }
  }
  return out;
}

void redis_idempotency_store::remember_orphan(std::string_view key, fencing_token token) {
  std::lock_guard<std::mutex> lock{unresolved_mutex_};
  if (unresolved_.size() >= max_unresolved) {
    unresolved_.pop_front();
  }
  unresolved_.emplace_back(redis_key(key), token);
}

void redis_idempotency_store::resolve_unknown_claims() {
  std::deque<std::pair<std::string, fencing_token>> pending;
  {
    std::lock_guard<std::mutex> lock{unresolved_mutex_};
    if (unresolved_.empty()) {
      return;
    }
    pending.swap(unresolved_);
  }
  std::vector<std::string> names;
  std::vector<std::string> tokens;
  names.reserve(pending.size());
  tokens.reserve(pending.size());
  for (auto& [name, token] : pending) {
    names.push_back(std::move(name));
    tokens.push_back(std::to_string(token));
  }
  auto r = connection_.evalsha(release_all_script_, names, tokens);
  if (!r || r.replies[0]->type != REDIS_REPLY_INTEGER) {
    // Still unreachable: keep them for the next call.
    std::lock_guard<std::mutex> lock{unresolved_mutex_};
    for (std::size_t i = 0; i < names.size() && unresolved_.size() < max_unresolved; ++i) {
      unresolved_.emplace_back(std::move(names[i]), pending[i].second);
    }
    return;
  }
  released_unknown_.fetch_add(static_cast<std::uint64_t>(r.replies[0]->integer),
                              std::memory_order_relaxed);
  spdlog::warn("redis idempotency store: Redis answers again; released {} of {} claims "
               "left behind by calls that failed during the outage",
               r.replies[0]->integer, names.size());
}

std::size_t redis_idempotency_store::unresolved_claims() const {
  std::lock_guard<std::mutex> lock{unresolved_mutex_};
  return unresolved_.size();
}

std::vector<fence_result>
redis_idempotency_store::complete(const std::vector<done_mark>& batch,
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
    auto& token = args.emplace_back(std::to_string(c.token));
    auto& done = args.emplace_back();
    done.reserve(6 + token.size() + c.result.size());
    done.append("done:").append(token).append(1, ':').append(c.result);
  }
  auto r = connection_.evalsha(complete_script_, redis_keys, args);
  const redisReply* reply = r ? r.replies[0].get() : nullptr;
  std::vector<fence_result> out(batch.size(), fence_result::unavailable);
  if (!is_array_of(reply, batch.size())) {
    log_server_failure("complete", r);
    // The messages are handed back; their live claims would make every
    // redelivery wait for claim_ttl. A lost but applied complete left a done
    // value, which the release leaves alone.
    if (r.status.failure == failure_class::transient) {
      for (const auto& c : batch) {
        remember_orphan(c.key, c.token);
      }
    }
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
    if (r.status.failure == failure_class::transient) {
      remember_orphan(key, token); // released once Redis answers
    }
    return fence_result::unavailable;
  }
  return r.replies[0]->integer == 1 ? fence_result::applied : fence_result::fenced;
}

} // namespace mailroom
