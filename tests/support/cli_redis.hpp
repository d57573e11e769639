#pragma once

// Test support for `mailroom run` against a real redis-server: the command
// line, and what to ask Redis about what the run left (with redis_admin.hpp).
//
// Include after <boost/test/unit_test.hpp>.

#include <string>
#include <vector>

#include "clients/redis/redis_connection.hpp"
#include "tests/support/redis_admin.hpp"

namespace mailroom::testing {

/// `mailroom <command> --config <source>/config/<config>`, pointed at Redis on
/// `port`, without the progress line, plus one `--set` per entry of `sets`.
inline std::vector<std::string> mailroom_args(const std::string& config, int port,
                                              std::vector<std::string> sets,
                                              const char* command = "run") {
  std::vector<std::string> args{
      MAILROOM_BINARY, command,
      "--config",      std::string{MAILROOM_SOURCE_DIR} + "/config/" + config,
      "--set",         "redis.port=" + std::to_string(port),
      "--set",         "progress.enabled=false"};
  for (auto& s : sets) {
    args.push_back("--set");
    args.push_back(std::move(s));
  }
  return args;
}

/// Counts, in Lua, the keys matching ARGV[1] that are done (see done_keys).
inline const char* const done_keys_lua =
    "local n = 0 "
    "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
    "  local v = redis.call('GET', k) "
    "  if v and string.sub(v, 1, 5) == 'done:' then n = n + 1 "
    "  elseif v then "
    "    local inst, tok = string.match(v, '^(%x+)%-(%d+)$') "
    "    local prefix = string.match(k, '^(.*)idem:') "
    "    if inst and prefix then "
    "      tok = tonumber(tok) "
    "      local done = prefix .. 'idem-done:' .. inst .. '-' .. "
    "                   string.format('%.0f', math.floor(tok / 1024)) "
    "      if redis.call('GETBIT', done, tok % 1024) == 1 then n = n + 1 end "
    "    end "
    "  end "
    "end "
    "return n";

/// Counts the idempotency keys matching `pattern` that are done: their
/// value starts with "done:", or names a claim (`<instance>-<token>`) whose
/// bit is set in its group's done bitmap (`redis_idempotency_store`).
inline long long done_keys(redis_connection& admin,
                           const std::string& pattern = "mailroom:idem:*") {
  return integer_of(admin, {"EVAL", done_keys_lua, "0", pattern});
}

} // namespace mailroom::testing
