#include "stores/redis/redis_idempotency_store.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>

#include <spdlog/spdlog.h>

#include "clients/redis/redis_reply.hpp"

namespace mailroom {

namespace {

// A token is `group << index_bits | index`: the claims of one call share a
// group (its lease and its done bitmap), up to this many per group.
constexpr unsigned index_bits = 10;
constexpr std::size_t group_capacity = std::size_t{1} << index_bits;

// Taking over a claim whose holder's lease ran out and that is not done.
// KEYS[1]: the lease of the new claims' group. Per claim i: KEYS[3i - 1],
// KEYS[3i], KEYS[3i + 1]: the key, its holder's lease and done bitmap.
// ARGV[1]: the key's ttl ms, ARGV[2]: the lease's. ARGV[3i], ARGV[3i + 1],
// ARGV[3i + 2]: the value claim found, the holder's index, the new value.
// Per key: 0 = claimed now, 1 = done, 2 = in flight.
constexpr const char* take_over_lua = R"lua(
local out, took = {}, false
for i = 1, (#KEYS - 1) / 3 do
  local key, held = KEYS[3 * i - 1], ARGV[3 * i]
  local v = redis.call('GET', key)
  if v == ARGV[3 * i + 2] then
    took = true -- this call, repeated after its reply was lost
    out[i] = 0
  elseif v ~= false and v ~= held then
    out[i] = 2 -- changed since the claim: asked again later
  elseif v ~= false and redis.call('GETBIT', KEYS[3 * i + 1], ARGV[3 * i + 1]) == 1 then
    out[i] = 1
  elseif v ~= false and redis.call('EXISTS', KEYS[3 * i]) == 1 then
    out[i] = 2
  else
    redis.call('SET', key, ARGV[3 * i + 2], 'PX', ARGV[1])
    took = true
    out[i] = 0
  end
end
if took then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
end
return out
)lua";

// KEYS[1]: a scratch key. Per group g: KEYS[2g], KEYS[2g + 1]: its lease
// and done bitmap; ARGV[2 + g]: the bitmap of its completed indices. Then
// per keyed completion j (a result to keep): KEYS[k0 + 2j - 1], KEYS[k0 +
// 2j]: the key and its group's lease; ARGV[a0 + 2j - 1], ARGV[a0 + 2j]: the
// claim's value and the done value (`done:<claim>:<result>`, built by the
// caller: a string made in Lua is hashed and interned). ARGV[1]: the
// result's ttl ms, ARGV[2]: the number of groups. Answers 1 = applied, 0 =
// not (for a group: its lease ran out; the caller reads its bits).
constexpr const char* complete_lua = R"lua(
local ttl, groups = ARGV[1], tonumber(ARGV[2])
local out = {}
for g = 1, groups do
  if redis.call('EXISTS', KEYS[2 * g]) == 1 then
    local done = KEYS[2 * g + 1]
    redis.call('SET', KEYS[1], ARGV[2 + g])
    redis.call('BITOP', 'OR', done, done, KEYS[1])
    redis.call('PEXPIRE', done, ttl)
    out[g] = 1
  else
    out[g] = 0
  end
end
if groups > 0 then
  redis.call('DEL', KEYS[1])
end
local k0, a0 = 2 * groups + 1, 2 + groups
for j = 1, (#KEYS - k0) / 2 do
  local key, held = KEYS[k0 + 2 * j - 1], ARGV[a0 + 2 * j - 1]
  local v = redis.call('GET', key)
  if v == held and redis.call('EXISTS', KEYS[k0 + 2 * j]) == 1 then
    redis.call('SET', key, ARGV[a0 + 2 * j], 'PX', ttl)
    out[groups + j] = 1
  elseif v and string.sub(v, 1, 5 + #held + 1) == 'done:' .. held .. ':' then
    out[groups + j] = 1 -- a repeat of an applied complete: the first result stays
  else
    out[groups + j] = 0
  end
end
return out
)lua";

// Per claim i: KEYS[3i - 2], KEYS[3i - 1], KEYS[3i]: the key, its group's
// lease and done bitmap; ARGV[2i - 1], ARGV[2i]: the claim's value and
// index. Deletes each key still held by its live, unfinished claim; returns
// how many it deleted.
constexpr const char* release_lua = R"lua(
local n = 0
for i = 1, #KEYS / 3 do
  local key = KEYS[3 * i - 2]
  if redis.call('GET', key) == ARGV[2 * i - 1]
      and redis.call('EXISTS', KEYS[3 * i - 1]) == 1
      and redis.call('GETBIT', KEYS[3 * i], ARGV[2 * i]) == 0 then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
)lua";

// Claims whose outcome is unknown are remembered up to this many; beyond it
// the oldest are left to their lease.
constexpr std::size_t max_unresolved = 1 << 20;

// Returns the result stored in a `done:<claim>:<result>` value, if `value`
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

std::string ms_arg(std::chrono::milliseconds ttl) {
  return std::to_string(std::max<std::chrono::milliseconds::rep>(ttl.count(), 1));
}

std::string decimal(std::uint64_t n) { return std::to_string(n); }

// The connection logs an outage once; what it cannot know is that the server
// answered and the answer was useless (an error reply, an unexpected shape).
void log_server_failure(const char* call, const redis_replies& r) {
  if (!r.replies.empty()) {
    spdlog::error("redis idempotency store: {} failed: {}", call,
                  r ? std::string{"unexpected reply"} : r.status.what);
  }
}

std::uint64_t random_64() {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ rd();
}

std::string random_instance() {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(random_64()));
  return hex;
}

// Groups count up from a random start below 2^42, so tokens of different
// processes, and of one process and its restart, differ (the claim store
// tells records apart by key and token alone), and tokens stay below 2^53:
// a Lua number (a double) holds them exactly, for scripts that inspect keys.
std::uint64_t first_group_number() {
  std::uint64_t start = random_64() >> 22;
  return start == 0 ? 1 : start;
}

} // namespace

redis_idempotency_store::redis_idempotency_store(redis_settings settings,
                                                 std::chrono::milliseconds result_ttl)
    : connection_(std::move(settings)),
      take_over_script_(connection_.add_script(take_over_lua)),
      complete_script_(connection_.add_script(complete_lua)),
      release_script_(connection_.add_script(release_lua)),
      key_prefix_(connection_.key("idem:")),
      lease_prefix_(connection_.key("idem-lease:")),
      done_prefix_(connection_.key("idem-done:")),
      scratch_key_(connection_.key("idem-scratch")), instance_(random_instance()),
      result_ttl_(result_ttl), next_group_(first_group_number()) {}

std::string redis_idempotency_store::redis_key(std::string_view key) const {
  return key_prefix_ + std::string{key};
}

std::string_view redis_idempotency_store::claim_value(fencing_token token,
                                                      claim_value_buffer& buf) const {
  auto end = std::copy(instance_.begin(), instance_.end(), buf.begin());
  *end++ = '-';
  end = std::to_chars(end, buf.data() + buf.size(), token).ptr;
  return {buf.data(), static_cast<std::size_t>(end - buf.data())};
}

std::string redis_idempotency_store::claim_value(fencing_token token) const {
  claim_value_buffer buf;
  return std::string{claim_value(token, buf)};
}

namespace {

// `<prefix><instance>-<group>`: the name of a group's lease or done bitmap.
std::string group_key(const std::string& prefix, std::string_view instance,
                      std::uint64_t group) {
  std::string key = prefix;
  key.append(instance).append(1, '-').append(decimal(group));
  return key;
}

} // namespace

std::string redis_idempotency_store::lease_key(std::string_view instance,
                                               std::uint64_t group) const {
  return group_key(lease_prefix_, instance, group);
}

std::string redis_idempotency_store::done_key(std::string_view instance,
                                              std::uint64_t group) const {
  return group_key(done_prefix_, instance, group);
}

std::string redis_idempotency_store::lease_key_of(fencing_token token) const {
  return lease_key(instance_, token >> index_bits);
}

std::string redis_idempotency_store::done_key_of(fencing_token token) const {
  return done_key(instance_, token >> index_bits);
}

std::optional<redis_idempotency_store::holder>
redis_idempotency_store::parse_holder(std::string_view value) {
  auto dash = value.find('-');
  if (dash != 16 || value.size() < 18) {
    return std::nullopt;
  }
  holder h;
  h.instance = value.substr(0, dash);
  auto digits = value.substr(dash + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), h.token);
  if (ec != std::errc{} || end != digits.data() + digits.size() || h.token == 0) {
    return std::nullopt;
  }
  return h;
}

std::uint64_t redis_idempotency_store::next_groups(std::size_t n) {
  return next_group_.fetch_add(n, std::memory_order_relaxed);
}

std::vector<claim_result>
redis_idempotency_store::claim(const std::vector<std::string_view>& keys,
                               std::chrono::milliseconds ttl) {
  std::vector<claim_result> out(keys.size());
  if (keys.empty()) {
    return out;
  }
  resolve_unknown_claims();
  const std::size_t groups = (keys.size() + group_capacity - 1) / group_capacity;
  const std::uint64_t first_group = next_groups(groups);
  // Per group a lease (PSETEX, for the claim's ttl), then one `SET key
  // value NX PX ttl GET` per key, pipelined: nil when the key was absent
  // (the claim is ours), its value otherwise. NX with GET needs Redis 7.0.
  // The key itself lives on past the lease, to say later who finished it.
  const std::string lease_ms = ms_arg(ttl);
  const std::string key_ms = ms_arg(ttl + result_ttl_);
  redis_pipeline commands;
  std::string name;
  claim_value_buffer value;
  for (std::size_t g = 0; g < groups; ++g) {
    commands.add({"PSETEX", lease_key(instance_, first_group + g), lease_ms, "1"});
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    out[i].token = ((first_group + i / group_capacity) << index_bits) | (i % group_capacity);
    name.assign(key_prefix_);
    name.append(keys[i]);
    // The pipeline encodes its arguments as they are added: one buffer serves.
    commands.add({"SET", name, claim_value(out[i].token, value), "NX", "PX", key_ms, "GET"});
  }
  auto r = connection_.send(commands);
  if (!r) {
    log_server_failure("claim", r);
    if (r.status.what.find("syntax error") != std::string::npos) {
      spdlog::error("redis idempotency store: the server refused SET NX GET; it needs "
                    "Redis 7.0 or later");
    }
  }
  if (r.replies.size() != groups + keys.size()) {
    // The SETs may have run with their replies lost: the keys would stay
    // claimed by a lease nobody renews. Remember them, so the first call
    // that reaches Redis again releases them.
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
  read_claim_replies(keys, first_group, groups, r, ttl, out);
  return out;
}

void redis_idempotency_store::read_claim_replies(const std::vector<std::string_view>& keys,
                                                 std::uint64_t first_group,
                                                 std::size_t groups,
                                                 const redis_replies& r,
                                                 std::chrono::milliseconds ttl,
                                                 std::vector<claim_result>& out) {
  std::vector<contested_claim> contested;
  claim_value_buffer offered;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const redisReply* lease = r.replies[i / group_capacity].get();
    const redisReply* e = r.replies[groups + i].get();
    claim_result& c = out[i];
    if (lease->type != REDIS_REPLY_STATUS) {
      // No lease: a claim it made would look abandoned at once.
      if (e->type == REDIS_REPLY_NIL) {
        remember_orphan(keys[i], c.token);
      }
      c = claim_result{};
      continue;
    }
    if (e->type == REDIS_REPLY_NIL) {
      c.status = claim_result::state::fresh;
      continue;
    }
    const std::string_view held = e->type == REDIS_REPLY_STRING
                                      ? std::string_view{e->str, e->len}
                                      : std::string_view{};
    // A key already holding the value offered for it was set by this very
    // call, repeated by the connection after its first reply was lost.
    if (e->type == REDIS_REPLY_STRING && held == claim_value(c.token, offered)) {
      c.status = claim_result::state::fresh;
      continue;
    }
    c.token = 0;
    if (e->type != REDIS_REPLY_STRING) {
      c.status = claim_result::state::unavailable;
      continue;
    }
    if (auto result = done_result(held)) {
      c.status = claim_result::state::done;
      c.result.assign(result->data(), result->size());
      continue;
    }
    // In flight: repeated in this batch, held by a value of another kind,
    // or held by another claim until take_over says more.
    c.status = claim_result::state::in_flight;
    auto holder = parse_holder(held);
    const bool this_call = holder && holder->instance == instance_ &&
                           (holder->token >> index_bits) >= first_group &&
                           (holder->token >> index_bits) < first_group + groups;
    if (holder && !this_call) {
      contested.push_back({i, held, *holder});
    }
  }
  // One script call per group's worth of them.
  for (std::size_t from = 0; from < contested.size(); from += group_capacity) {
    auto to = std::min(contested.size(), from + group_capacity);
    take_over(keys, {contested.begin() + from, contested.begin() + to}, ttl, out);
  }
}

void redis_idempotency_store::take_over(const std::vector<std::string_view>& keys,
                                        const std::vector<contested_claim>& contested,
                                        std::chrono::milliseconds ttl,
                                        std::vector<claim_result>& out) {
  // A key held by another claim: done if that claim's bit is set, in flight
  // while its lease lives, else abandoned and claimed here, in one script
  // so nobody finishes or takes it in between.
  const std::uint64_t group = next_groups(1);
  std::vector<std::string> script_keys{lease_key(instance_, group)};
  std::vector<std::string> args{ms_arg(ttl + result_ttl_), ms_arg(ttl)};
  std::vector<fencing_token> tokens;
  for (std::size_t n = 0; n < contested.size(); ++n) {
    const auto& [i, held, h] = contested[n];
    script_keys.push_back(redis_key(keys[i]));
    script_keys.push_back(lease_key(h.instance, h.token >> index_bits));
    script_keys.push_back(done_key(h.instance, h.token >> index_bits));
    tokens.push_back((group << index_bits) | n);
    args.emplace_back(held);
    args.push_back(decimal(h.token & (group_capacity - 1)));
    args.push_back(claim_value(tokens.back()));
  }
  auto r = connection_.evalsha(take_over_script_, script_keys, args);
  const redisReply* reply = r ? r.replies[0].get() : nullptr;
  if (!is_array_of(reply, tokens.size())) {
    log_server_failure("take over", r);
    if (r.status.failure == failure_class::transient) {
      for (std::size_t n = 0; n < tokens.size(); ++n) {
        remember_orphan(keys[contested[n].index], tokens[n]);
      }
    }
    for (std::size_t n = 0; n < tokens.size(); ++n) {
      out[contested[n].index] = claim_result{};
    }
    return;
  }
  for (std::size_t n = 0; n < tokens.size(); ++n) {
    claim_result& c = out[contested[n].index];
    switch (reply->element[n]->integer) {
    case 0:
      c.status = claim_result::state::fresh;
      c.token = tokens[n];
      break;
    case 1:
      c.status = claim_result::state::done;
      c.result.clear();
      break;
    default:
      c.status = claim_result::state::in_flight;
    }
  }
}

void redis_idempotency_store::remember_orphan(std::string_view key, fencing_token token) {
  std::lock_guard<std::mutex> lock{unresolved_mutex_};
  if (unresolved_.size() >= max_unresolved) {
    unresolved_.pop_front();
  }
  unresolved_.emplace_back(std::string{key}, token);
}

std::optional<std::int64_t> redis_idempotency_store::release_claims(
    const std::vector<std::pair<std::string, fencing_token>>& claims, failure_class& failure) {
  std::vector<std::string> script_keys;
  std::vector<std::string> args;
  script_keys.reserve(3 * claims.size());
  args.reserve(2 * claims.size());
  for (const auto& [key, token] : claims) {
    script_keys.push_back(redis_key(key));
    script_keys.push_back(lease_key_of(token));
    script_keys.push_back(done_key_of(token));
    args.push_back(claim_value(token));
    args.push_back(decimal(token & (group_capacity - 1)));
  }
  auto r = connection_.evalsha(release_script_, script_keys, args);
  failure = r.status.failure;
  if (!r || r.replies[0]->type != REDIS_REPLY_INTEGER) {
    log_server_failure("release", r);
    return std::nullopt;
  }
  return r.replies[0]->integer;
}

void redis_idempotency_store::resolve_unknown_claims() {
  std::vector<std::pair<std::string, fencing_token>> pending;
  {
    std::lock_guard<std::mutex> lock{unresolved_mutex_};
    if (unresolved_.empty()) {
      return;
    }
    pending.assign(std::make_move_iterator(unresolved_.begin()),
                   std::make_move_iterator(unresolved_.end()));
    unresolved_.clear();
  }
  failure_class failure{};
  std::optional<std::int64_t> released{0};
  // A script call per group's worth: one call blocks Redis for its length.
  for (std::size_t from = 0; from < pending.size() && released; from += group_capacity) {
    auto to = std::min(pending.size(), from + group_capacity);
    auto n = release_claims({pending.begin() + from, pending.begin() + to}, failure);
    released = n ? std::optional<std::int64_t>{*released + *n} : std::nullopt;
  }
  if (!released) {
    // Still unreachable: keep them for the next call.
    std::lock_guard<std::mutex> lock{unresolved_mutex_};
    for (auto& p : pending) {
      if (unresolved_.size() >= max_unresolved) {
        break;
      }
      unresolved_.push_back(std::move(p));
    }
    return;
  }
  released_unknown_.fetch_add(static_cast<std::uint64_t>(*released),
                              std::memory_order_relaxed);
  spdlog::warn("redis idempotency store: Redis answers again; released {} of {} claims "
               "left behind by calls that failed during the outage",
               *released, pending.size());
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
  // A completion without a result sets its claim's bit in its group's done
  // bitmap: one bitmap write per group, not a write per key. One with a
  // result, or kept for another ttl than the keys were claimed for (their
  // lifetime is the claim's ttl plus result_ttl), writes its key.
  std::map<std::uint64_t, std::vector<std::size_t>> by_group;
  std::vector<std::size_t> keyed;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].result.empty() && ttl == result_ttl_) {
      by_group[batch[i].token >> index_bits].push_back(i);
    } else {
      keyed.push_back(i);
    }
  }
  std::vector<std::string> script_keys{scratch_key_};
  std::vector<std::string> args{ms_arg(ttl), decimal(by_group.size())};
  for (const auto& [group, members] : by_group) {
    script_keys.push_back(lease_key(instance_, group));
    script_keys.push_back(done_key(instance_, group));
    // As long as its highest index needs: BITOP pads the shorter operand.
    std::string bits;
    for (std::size_t i : members) {
      // BITOP counts bit 0 as the most significant bit of byte 0.
      auto index = batch[i].token & (group_capacity - 1);
      if (bits.size() <= index / 8) {
        bits.resize(index / 8 + 1, '\0');
      }
      bits[index / 8] = static_cast<char>(bits[index / 8] | (0x80 >> (index % 8)));
    }
    args.push_back(std::move(bits));
  }
  args.reserve(args.size() + 2 * keyed.size());
  for (std::size_t i : keyed) {
    const auto& c = batch[i];
    script_keys.push_back(redis_key(c.key));
    script_keys.push_back(lease_key_of(c.token));
    std::string held = claim_value(c.token);
    std::string done;
    done.reserve(6 + held.size() + c.result.size());
    done.append("done:").append(held).append(1, ':').append(c.result);
    args.push_back(std::move(held));
    args.push_back(std::move(done));
  }
  auto r = connection_.evalsha(complete_script_, script_keys, args);
  const redisReply* reply = r ? r.replies[0].get() : nullptr;
  std::vector<fence_result> out(batch.size(), fence_result::unavailable);
  if (!is_array_of(reply, by_group.size() + keyed.size())) {
    log_server_failure("complete", r);
    // The messages are handed back; their live claims would make every
    // redelivery wait for claim_ttl. A lost but applied complete left a done
    // bit or value, which the release leaves alone.
    if (r.status.failure == failure_class::transient) {
      for (const auto& c : batch) {
        remember_orphan(c.key, c.token);
      }
    }
    return out;
  }
  std::size_t g = 0;
  std::vector<std::size_t> expired;
  for (const auto& [group, members] : by_group) {
    const redisReply* e = reply->element[g++];
    for (std::size_t i : members) {
      if (e->type == REDIS_REPLY_INTEGER && e->integer == 1) {
        out[i] = fence_result::applied;
      } else {
        expired.push_back(i);
      }
    }
  }
  for (std::size_t j = 0; j < keyed.size(); ++j) {
    const redisReply* e = reply->element[g + j];
    if (e->type == REDIS_REPLY_INTEGER) {
      out[keyed[j]] = e->integer == 1 ? fence_result::applied : fence_result::fenced;
    }
  }
  if (!expired.empty()) {
    read_done_bits(batch, expired, out);
  }
  return out;
}

void redis_idempotency_store::read_done_bits(const std::vector<done_mark>& batch,
                                             const std::vector<std::size_t>& expired,
                                             std::vector<fence_result>& out) {
  // The lease ran out before the complete: fenced, unless an earlier call
  // already set the bit (a repeat). No bit of a group changes once its
  // lease is gone, so reading them after is as good as in the script.
  redis_pipeline commands;
  for (std::size_t i : expired) {
    commands.add({"GETBIT", done_key_of(batch[i].token),
                  decimal(batch[i].token & (group_capacity - 1))});
  }
  auto r = connection_.send(commands);
  if (!r || r.replies.size() != expired.size()) {
    log_server_failure("complete", r);
    return;
  }
  for (std::size_t n = 0; n < expired.size(); ++n) {
    const redisReply* e = r.replies[n].get();
    out[expired[n]] = e->type == REDIS_REPLY_INTEGER && e->integer == 1
                          ? fence_result::applied
                          : fence_result::fenced;
  }
}

fence_result redis_idempotency_store::release(std::string_view key, fencing_token token) {
  failure_class failure{};
  auto released = release_claims({{std::string{key}, token}}, failure);
  if (!released) {
    if (failure == failure_class::transient) {
      remember_orphan(key, token); // released once Redis answers
    }
    return fence_result::unavailable;
  }
  return *released == 1 ? fence_result::applied : fence_result::fenced;
}

} // namespace mailroom
