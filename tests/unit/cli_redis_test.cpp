#define BOOST_TEST_MODULE cli_redis
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "clients/redis/redis_connection.hpp"
#include "tests/support/cli_redis.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/scoped_env.hpp"

using namespace mailroom::testing;
using namespace std::chrono_literals;

namespace {

// `mailroom run` (or `command`) on the Redis example, pointed at `port`.
std::vector<std::string> run_args(int port, std::vector<std::string> sets,
                                  const char* command = "run") {
  return mailroom_args("redis-dedupe.toml", port, std::move(sets), command);
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Requires a clean exit and that every message was settled exactly one way.
void check_all_settled(const process_runner& p, int rc, long long messages) {
  auto out = p.out();
  BOOST_REQUIRE_MESSAGE(rc == 0, "exit " << rc << "\nstdout:\n"
                                         << out << "\nstderr:\n"
                                         << p.err());
  auto acked = summary_value(out, "acked");
  auto dead = summary_value(out, "dead-lettered");
  BOOST_CHECK_MESSAGE(acked + dead == messages, "acked " << acked << " + dead-lettered "
                                                         << dead << " != " << messages);
  BOOST_TEST(summary_value(out, "DLQ holds") == dead);
}

} // namespace

BOOST_AUTO_TEST_CASE(run_keeps_dedupe_and_claims_on_redis) {
  redis_server server;
  process_runner p{run_args(server.port(), {"source.messages=20000"})};
  int rc = p.wait(180s);
  check_all_settled(p, rc, 20000);
  auto out = p.out();
  BOOST_TEST(summary_value(out, "of which duplicates") > 0);
  BOOST_TEST(summary_value(out, "store errors") == 0);

  mailroom::redis_connection admin{admin_settings(server)};
  BOOST_TEST(integer_of(admin, {"DBSIZE"}) > 0);
  // Every handled key is done under the configured prefix, and every
  // dispatch record was cleared once its message settled.
  BOOST_TEST(done_keys(admin, "mailroom:idem:*") > 15000);
  BOOST_TEST(done_keys(admin, "mailroom:claims:*") == 0); // empty indexes vanish
  BOOST_TEST(done_keys(admin, "mailroom:claim:*") == 0);

  // A second run of the same messages finds every handled key done on the
  // server: each ack is a duplicate and nothing is retried. Dead-lettered
  // keys were never done, so the poison messages are dead-lettered again.
  process_runner again{run_args(server.port(), {"source.messages=20000"})};
  rc = again.wait(180s);
  check_all_settled(again, rc, 20000);
  auto second = again.out();
  BOOST_TEST(summary_value(second, "of which duplicates") ==
             summary_value(second, "acked"));
  BOOST_TEST(summary_value(second, "retried") == 0);
  BOOST_TEST(summary_value(second, "dead-lettered") ==
             summary_value(out, "dead-lettered"));
}

BOOST_AUTO_TEST_CASE(password_comes_from_the_named_variable) {
  const std::string password = "pw-" + std::to_string(::getpid()) + "-not-in-any-output";
  redis_server server{redis_server::options{password, {}}};
  const std::string var = "MAILROOM_CLI_REDIS_TEST_PW";

  {
    scoped_env env{var, password};
    process_runner p{
        run_args(server.port(), {"source.messages=5000", "redis.password_env=" + var})};
    int rc = p.wait(120s);
    check_all_settled(p, rc, 5000);
    BOOST_TEST(!contains(p.out() + p.err(), password));

    // validate shows the variable's name, never its value.
    process_runner v{run_args(server.port(), {"redis.password_env=" + var}, "validate")};
    BOOST_TEST(v.wait(10s) == 0);
    BOOST_CHECK_MESSAGE(contains(v.out(), "password_env = \"" + var + "\""), v.out());
    BOOST_TEST(!contains(v.out() + v.err(), password));
  }
  {
    // A wrong password is refused at start, before anything is consumed.
    scoped_env env{var, "wrong-" + password};
    process_runner p{
        run_args(server.port(), {"source.messages=5000", "redis.password_env=" + var})};
    BOOST_TEST(p.wait(30s) == 1);
    BOOST_CHECK_MESSAGE(contains(p.err(), "mailroom: Redis at 127.0.0.1:" +
                                              std::to_string(server.port()) +
                                              " refused the connection: AUTH refused"),
                        p.err());
    BOOST_TEST(!contains(p.out() + p.err(), password));
    BOOST_TEST(!contains(p.out(), "mailroom run summary"));
  }
  {
    // A variable that is not set is a config error naming the key, for run
    // and validate alike.
    ::unsetenv(var.c_str());
    process_runner p{
        run_args(server.port(), {"source.messages=5000", "redis.password_env=" + var})};
    BOOST_TEST(p.wait(30s) == 2);
    BOOST_CHECK_MESSAGE(contains(p.err(), "mailroom: config error: redis.password_env"),
                        p.err());
    BOOST_CHECK_MESSAGE(contains(p.err(), var), p.err());
    BOOST_TEST(!contains(p.out(), "mailroom run summary"));

    process_runner v{run_args(server.port(), {"redis.password_env=" + var}, "validate")};
    BOOST_TEST(v.wait(10s) == 2);
    BOOST_CHECK_MESSAGE(contains(v.err(), "redis.password_env"), v.err());
  }
}

BOOST_AUTO_TEST_CASE(unreachable_redis_fails_the_start_clearly) {
  int port = 0;
  {
    // A port a server just left: nothing listens on it now.
    redis_server server;
    port = server.port();
  }
  auto t0 = std::chrono::steady_clock::now();
  process_runner p{run_args(port, {"source.messages=20000"})};
  int rc = p.wait(30s);
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(rc == 1);
  BOOST_CHECK_MESSAGE(contains(p.err(), "mailroom: cannot reach Redis at 127.0.0.1:" +
                                            std::to_string(port) + ": "),
                      p.err());
  BOOST_TEST(!contains(p.out(), "mailroom run summary"));
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(took).count() < 10000);

  // Only the stores on Redis need it: the same file with both stores in
  // memory runs without a server.
  process_runner memory{run_args(
      port, {"source.messages=2000", "dedupe.store=memory", "sweeper.store=memory"})};
  rc = memory.wait(60s);
  check_all_settled(memory, rc, 2000);
}

BOOST_AUTO_TEST_CASE(redis_outage_mid_run_loses_nothing_under_fail_closed) {
  redis_server server;
  constexpr long long messages = 200000;
  process_runner p{run_args(server.port(), {"source.messages=" + std::to_string(messages),
                                            "dedupe.on_store_error=fail_closed",
                                            "dedupe.store_error_delay_ms=200"})};
  std::this_thread::sleep_for(500ms);
  {
    // On a loaded machine the run may not have reached Redis yet; killing the
    // server before its start-up check would test that check instead.
    mailroom::redis_connection admin{admin_settings(server)};
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (integer_of(admin, {"DBSIZE"}) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
  }
  server.kill();
  std::this_thread::sleep_for(1000ms);
  server.restart();
  int rc = p.wait(280s);
  check_all_settled(p, rc, messages);
  BOOST_CHECK_MESSAGE(summary_value(p.out(), "store errors") > 0, p.out());
  // The run carried on against the restarted server.
  mailroom::redis_connection admin{admin_settings(server)};
  BOOST_TEST(done_keys(admin, "mailroom:idem:*") > 0);
}

BOOST_AUTO_TEST_CASE(a_redis_stall_costs_the_stall_not_the_claim_ttl) {
  // The reproduction: a 4 s SIGSTOP used to stretch a 2 s run to
  // 62 s (claims whose replies were lost held their keys for claim_ttl, and
  // every redelivery found them "in flight"), with nothing logged at the
  // example's level. Now the run resumes at full speed once Redis answers.
  redis_server server;
  constexpr long long messages = 40000;
  process_runner p{run_args(server.port(), {"source.messages=" + std::to_string(messages),
                                            "source.duplicate_ratio=0"})};
  {
    mailroom::redis_connection admin{admin_settings(server)};
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (integer_of(admin, {"DBSIZE"}) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  server.pause();
  std::this_thread::sleep_for(4000ms);
  server.resume();
  int rc = p.wait(120s);
  auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  check_all_settled(p, rc, messages);
  // 4 s of stall plus the rest of a ~2 s run; 62 s before. Generous bound.
  BOOST_TEST(took < 25.0);
  // One line when Redis goes away, one when it answers again (per connection).
  auto err = p.err();
  BOOST_TEST(contains(err, "connection lost"));
  BOOST_TEST(contains(err, "answering again after"));
}
