#pragma once

// Test support for `mailroom run` against a real redis-server: the command
// line, and a connection of the test's own to look at what the run left.
//
// Include after <boost/test/unit_test.hpp>.

#include <string>
#include <vector>

#include "clients/redis/redis_connection.hpp"
#include "tests/support/redis_server.hpp"

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

/// Settings of an admin connection to `server`.
inline redis_settings admin_settings(const redis_server& server) {
  redis_settings s;
  s.port = server.port();
  return s;
}

/// Runs `cmd` on `admin`, requires success, and returns its reply, which
/// lives as long as `keep`.
inline redisReply* reply_of(redis_connection& admin, const redis_command& cmd,
                            redis_replies& keep) {
  keep = admin.command(cmd);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(keep),
                        "admin command failed: " + keep.status.what);
  return keep.replies[0].get();
}

/// Runs `cmd` on `admin` and returns its integer reply.
inline long long integer_reply(redis_connection& admin, const redis_command& cmd) {
  redis_replies keep;
  auto* reply = reply_of(admin, cmd, keep);
  BOOST_REQUIRE(reply->type == REDIS_REPLY_INTEGER);
  return reply->integer;
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
  return integer_reply(admin, {"EVAL", script, "0", pattern});
}

} // namespace mailroom::testing
