#include "stores/redis/redis_claim_store.hpp"

#include <spdlog/spdlog.h>

#include "stores/redis/dispatch_record_codec.hpp"
#include "stores/redis/fence_replies.hpp"
#include "core/unix_time.hpp"

namespace mailroom {

namespace {

// KEYS[1], KEYS[2]: the two indexes; KEYS[2 + i]: record i. ARGV[2i - 1]:
// the bytes its value starts with when it still carries the caller's token
// (dispatch_record_token_prefix); ARGV[2i]: its index member. Per record:
// 1 = deleted, 0 = fenced. The index entries go in one ZREM per index at
// the end (members in chunks Lua's unpack can take).
constexpr const char* terminal_lua = R"lua(
local out = {}
local members = {}
for i = 3, #KEYS do
  local j = 2 * (i - 2)
  local prefix = ARGV[j - 1]
  if redis.call('GETRANGE', KEYS[i], 0, #prefix - 1) == prefix then
    redis.call('DEL', KEYS[i])
    members[#members + 1] = ARGV[j]
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
for first = 1, #members, 1000 do
  local last = math.min(first + 999, #members)
  redis.call('ZREM', KEYS[1], unpack(members, first, last))
  redis.call('ZREM', KEYS[2], unpack(members, first, last))
end
return out
)lua";

// KEYS[1], KEYS[2]: the two indexes; KEYS[2 + i]: a record that could not
// be read. ARGV[2i - 1]: "" when it was missing or not a string (a hash of
// the format before this one), else its first bytes as read; ARGV[2i]: its
// index member. Removes each record and its index entries only if it is
// still what was read (a record written since is left alone); returns how
// many it removed.
constexpr const char* purge_lua = R"lua(
local n = 0
for i = 3, #KEYS do
  local j = 2 * (i - 2)
  local seen = ARGV[j - 1]
  local kind = redis.call('TYPE', KEYS[i]).ok
  local same
  if seen == '' then
    same = kind ~= 'string'
  else
    same = kind == 'string' and redis.call('GETRANGE', KEYS[i], 0, #seen - 1) == seen
  end
  if same then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[j])
    redis.call('ZREM', KEYS[2], ARGV[j])
    n = n + 1
  end
end
return n
)lua";

// Bytes of an unreadable record the purge compares before deleting it.
constexpr std::size_t purge_compare_bytes = 64;

} // namespace

redis_claim_store::redis_claim_store(redis_settings settings, std::string scope)
    : connection_(std::move(settings)), scope_(std::move(scope)),
      by_dispatch_(connection_.key("claims:" + scope_ + ":by_dispatch")),
      by_expiry_(connection_.key("claims:" + scope_ + ":by_expiry")),
      terminal_script_(connection_.add_script(terminal_lua)),
      purge_script_(connection_.add_script(purge_lua)) {}

std::string redis_claim_store::record_key(std::string_view key) const {
  std::string name{"claim:"};
  name.append(scope_).push_back(':');
  name.append(key);
  return connection_.key(name);
}

io_result redis_claim_store::record_dispatch(std::vector<dispatch_record> batch) {
  if (batch.empty()) {
    return io_result::success();
  }
  // One transaction: a SET per record (replacing any earlier one whole) and
  // one ZADD per index carrying every member of the batch.
  unix_time time;
  std::vector<redis_command> commands;
  commands.reserve(batch.size() + 4);
  commands.push_back({"MULTI"});
  redis_command by_dispatch{"ZADD", by_dispatch_};
  redis_command by_expiry{"ZADD", by_expiry_};
  by_dispatch.reserve(2 + 2 * batch.size());
  by_expiry.reserve(2 + 2 * batch.size());
  for (const auto& r : batch) {
    const auto& key = r.filed_under();
    commands.push_back({"SET", record_key(key), encode_dispatch_record(r, time)});
    by_dispatch.push_back(std::to_string(time.to_unix_ms(r.dispatched)));
    by_dispatch.push_back(key);
    by_expiry.push_back(std::to_string(time.to_unix_ms(r.claim_expires)));
    by_expiry.push_back(key);
  }
  commands.push_back(std::move(by_dispatch));
  commands.push_back(std::move(by_expiry));
  commands.push_back({"EXEC"});
  auto r = connection_.pipeline(commands);
  if (!r) {
    return r.status;
  }
  const redisReply* exec = r.replies.back().get();
  if (!is_array_of(exec, batch.size() + 2)) {
    return io_result::fatal("redis claim store: the dispatch transaction was aborted");
  }
  for (std::size_t i = 0; i < exec->elements; ++i) {
    if (is_error_reply(exec->element[i])) {
      return io_result::fatal("redis claim store: " +
                              std::string{reply_text(exec->element[i])});
    }
  }
  return io_result::success();
}

io_result redis_claim_store::list(const std::string& index, const std::string& max_score,
                                  std::size_t limit, std::vector<dispatch_record>& out) {
  if (limit == 0) {
    return io_result::success();
  }
  unix_time time;
  auto range = connection_.command(
      {"ZRANGEBYSCORE", index, "-inf", max_score, "LIMIT", "0", std::to_string(limit)});
  if (!range) {
    return range.status;
  }
  const redisReply* members = range.replies[0].get();
  if (members->type != REDIS_REPLY_ARRAY) {
    return io_result::fatal("redis claim store: unexpected ZRANGEBYSCORE reply");
  }
  if (members->elements == 0) {
    return io_result::success();
  }
  redis_command read{"MGET"};
  read.reserve(1 + members->elements);
  for (std::size_t i = 0; i < members->elements; ++i) {
    read.push_back(record_key(reply_text(members->element[i])));
  }
  auto values = connection_.command(read);
  if (!values) {
    return values.status;
  }
  const redisReply* found = values.replies[0].get();
  if (!is_array_of(found, members->elements)) {
    return io_result::fatal("redis claim store: unexpected MGET reply");
  }
  out.reserve(out.size() + found->elements);
  // A record and its index entries come and go together (MULTI/EXEC, the
  // terminal script), so an entry whose record is missing, not a string (a
  // hash of the earlier format) or unreadable would be listed first on every
  // tick and crowd out the records behind it: it is purged.
  std::vector<std::string> unreadable{by_dispatch_, by_expiry_};
  std::vector<std::string> seen;
  for (std::size_t i = 0; i < found->elements; ++i) {
    const redisReply* value = found->element[i];
    auto member = reply_text(members->element[i]);
    dispatch_record record;
    if (value->type == REDIS_REPLY_STRING &&
        decode_dispatch_record(reply_text(value), time, record)) {
      record.key.assign(member);
      out.push_back(std::move(record));
      continue;
    }
    unreadable.push_back(record_key(member));
    seen.emplace_back(value->type == REDIS_REPLY_STRING
                          ? reply_text(value).substr(0, purge_compare_bytes)
                          : std::string_view{});
    seen.emplace_back(member);
  }
  if (unreadable.size() > 2) {
    purge(unreadable, seen);
  }
  return io_result::success();
}

void redis_claim_store::purge(const std::vector<std::string>& keys,
                              const std::vector<std::string>& args) {
  auto r = connection_.evalsha(purge_script_, keys, args);
  if (r && r.replies[0]->type == REDIS_REPLY_INTEGER && r.replies[0]->integer > 0) {
    purged_.fetch_add(static_cast<std::uint64_t>(r.replies[0]->integer),
                      std::memory_order_relaxed);
    spdlog::warn(
        "redis claim store: removed {} unreadable records (missing, of an earlier "
        "format, or malformed) and their index entries",
        r.replies[0]->integer);
  }
}

io_result redis_claim_store::list_stale(clock::time_point cutoff, std::size_t limit,
                                        std::vector<dispatch_record>& out) {
  // Exclusive bound: "dispatched before cutoff" in whole milliseconds.
  return list(by_dispatch_, "(" + std::to_string(unix_time{}.to_unix_ms(cutoff)), limit,
              out);
}

io_result redis_claim_store::list_reclaimable(clock::time_point now, std::size_t limit,
                                              std::vector<dispatch_record>& out) {
  // Exclusive too: stored expiries are rounded down, and a claim must not be
  // reclaimed in the millisecond before it really expires.
  return list(by_expiry_, "(" + std::to_string(unix_time{}.to_unix_ms(now)), limit, out);
}

std::vector<fence_result>
redis_claim_store::terminate(const std::vector<terminal_mark>& batch) {
  std::vector<fence_result> out(batch.size(), fence_result::unavailable);
  if (batch.empty()) {
    return out;
  }
  std::vector<std::string> keys{by_dispatch_, by_expiry_};
  std::vector<std::string> args;
  keys.reserve(batch.size() + 2);
  args.reserve(2 * batch.size());
  for (const auto& mark : batch) {
    keys.push_back(record_key(mark.key));
    args.push_back(dispatch_record_token_prefix(mark.token));
    args.emplace_back(mark.key);
  }
  auto r = connection_.evalsha(terminal_script_, keys, args);
  const redisReply* reply = r ? r.replies[0].get() : nullptr;
  if (!is_array_of(reply, batch.size())) {
    // An outage is logged once by the connection; a useless answer is not.
    if (!r.replies.empty()) {
      spdlog::error("redis claim store: marking {} records terminal failed: {}",
                    batch.size(), r ? std::string{"unexpected reply"} : r.status.what);
    }
    return out;
  }
  read_fence_replies(reply, out);
  return out;
}

fence_result redis_claim_store::mark_terminal(const std::string& key,
                                              fencing_token token) {
  return terminate({terminal_mark{key, token}})[0];
}

void redis_claim_store::mark_terminal_all(const std::vector<terminal_mark>& batch) {
  terminate(batch);
}

std::size_t redis_claim_store::pending() const {
  auto r = connection_.command({"ZCARD", by_dispatch_});
  if (r && r.replies[0]->type == REDIS_REPLY_INTEGER) {
    last_pending_.store(static_cast<std::size_t>(r.replies[0]->integer));
  }
  return last_pending_.load();
}

} // namespace mailroom
