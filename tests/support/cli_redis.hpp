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

/// Counts the idempotency keys matching `pattern` that are done (their value
/// starts with "done:").
inline long long done_keys(redis_connection& admin,
                           const std::string& pattern = "mailroom:idem:*") {
  const std::string script =
      "local n = 0 "
      "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
      "  local v = redis.call('GET', k) "
      "  if v and string.sub(v, 1, 5) == 'done:' then n = n + 1 end "
      "end "
      "return n";
  return integer_of(admin, {"EVAL", script, "0", pattern});
}

} // namespace mailroom::testing
