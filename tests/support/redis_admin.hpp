#pragma once

// Test support: a test's own connection to the real redis-server, to set
// up state and look at what the code under test left there.
//
// Include after <boost/test/unit_test.hpp>.

#include <chrono>
#include <utility>

#include "clients/redis/redis_connection.hpp"
#include "tests/support/redis_server.hpp"

namespace mailroom::testing {

/// Settings of an admin connection to `server`.
inline redis_settings admin_settings(const redis_server& server) {
  redis_settings s;
  s.port = server.port();
  // The test's own look at Redis waits longer than the code under test: a
  // 1 s bound timed out once on a loaded CI machine (a broker starting beside).
  s.connect_timeout = std::chrono::milliseconds{10000};
  s.command_timeout = std::chrono::milliseconds{10000};
  return s;
}

/// Runs `cmd` on `admin`, requires success, and returns its reply.
inline reply_ptr run(redis_connection& admin, const redis_command& cmd) {
  auto r = admin.command(cmd);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), "admin command failed: " + r.status.what);
  return std::move(r.replies[0]);
}

/// Runs `cmd` on `admin` and returns its integer reply.
inline long long integer_of(redis_connection& admin, const redis_command& cmd) {
  auto reply = run(admin, cmd);
  BOOST_REQUIRE(reply->type == REDIS_REPLY_INTEGER);
  return reply->integer;
}

} // namespace mailroom::testing
