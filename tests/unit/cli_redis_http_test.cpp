#define BOOST_TEST_MODULE cli_redis_http
#include <boost/test/unit_test.hpp>

// The operator's endpoints of `mailroom run` (/metrics, /healthz, /readyz),
// scraped during real runs: on Redis Streams with Redis dedupe, and on the
// memory transport for the drain.

#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "clients/redis/redis_connection.hpp"
#include "tests/support/cli_redis.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/free_port.hpp"
#include "tests/support/http_scrape.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/redis_server.hpp"

using namespace mailroom::testing;
using namespace std::chrono_literals;

namespace {

// Appends `n` entries to "orders", every 100th with malformed JSON (the demo
// handler dead-letters it).
void fill(mailroom::redis_connection& admin, int n) {
  std::vector<mailroom::redis_command> cmds;
  for (int i = 0; i < n; ++i) {
    bool poison = (i + 1) % 100 == 0;
    cmds.push_back({"XADD", "orders", "*", "key", "k-" + std::to_string(i), "payload",
                    poison ? std::string{"{not json"} : "{\"id\":" + std::to_string(i) + "}"});
  }
  BOOST_REQUIRE(static_cast<bool>(admin.pipeline(cmds)));
}

std::string listen_on(int port) { return "http.listen=\"127.0.0.1:" + std::to_string(port) + "\""; }

double value_of(int port, const std::string& series) {
  auto r = http_get(port, "/metrics");
  return r.status == 200 ? series_value(r.body, series) : -1;
}

// A wait for a running process: checked every 50 ms.
template <class Pred> bool eventually_true(Pred f, std::chrono::milliseconds limit) {
  return eventually(f, limit, 50ms);
}

// `mailroom run` on the embedded default (memory transport, generator).
std::vector<std::string> memory_run(int port, std::vector<std::string> sets) {
  std::vector<std::string> args{MAILROOM_BINARY, "run", "--config",
                                std::string{MAILROOM_SOURCE_DIR} + "/config/default.toml",
                                "--set", "progress.enabled=false", "--set", listen_on(port)};
  for (auto& s : sets) {
    args.push_back("--set");
    args.push_back(std::move(s));
  }
  return args;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_scrape_counts_what_the_summary_counts_and_promtool_accepts_it) {
  constexpr int n = 3000;
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  fill(admin, n);
  int port = free_port();
  process_runner p{mailroom_args("redis-streams.toml", server.port(), {listen_on(port)})};
  const std::string on = "{transport=\"redis-streams\"}";
  BOOST_REQUIRE_MESSAGE(
      eventually_true([&] { return value_of(port, "mailroom_settled_total" + on) == n; }, 60s),
      "settled " << value_of(port, "mailroom_settled_total" + on) << "\n" << p.err());
  auto scrape = http_get(port, "/metrics");
  BOOST_REQUIRE(scrape.status == 200);
  std::string said;
  BOOST_TEST(promtool_check(scrape.body, said) == 0, said);
  BOOST_TEST(said.empty(), said);
  p.signal(SIGTERM);
  BOOST_REQUIRE(p.wait(15s) == 0);
  auto out = p.out();
  // The same numbers as the run's own summary, all of them on the topic
  // (stream) "orders": the per-topic series sum to the totals.
  const std::string orders = "{transport=\"redis-streams\",topic=\"orders\"}";
  BOOST_TEST(series_value(scrape.body, "mailroom_acked_total" + orders) ==
             summary_value(out, "acked"));
  BOOST_TEST(series_sum(scrape.body, "mailroom_acked_total") == summary_value(out, "acked"));
  BOOST_TEST(series_value(scrape.body, "mailroom_dead_lettered_total" + orders) ==
             summary_value(out, "dead-lettered"));
  BOOST_TEST(series_value(scrape.body, "mailroom_dead_lettered_total" + orders) == n / 100);
  BOOST_TEST(series_value(scrape.body, "mailroom_acked_total" + orders) == n - n / 100);
  BOOST_TEST(series_value(scrape.body, "mailroom_received_total" + orders) == n);
  BOOST_TEST(series_value(scrape.body, "mailroom_retried_total" + orders) ==
             summary_value(out, "retried"));
  BOOST_TEST(series_value(scrape.body, "mailroom_deduped_total" + orders) ==
             summary_value(out, "of which duplicates"));
  BOOST_TEST(series_value(scrape.body, "mailroom_in_flight" + on) == 0);
  // Every acked message's latency and its handler's duration were timed.
  BOOST_TEST(series_value(scrape.body, "mailroom_message_latency_seconds_count" + on) >=
             n - n / 100);
  BOOST_TEST(series_value(scrape.body, "mailroom_handler_duration_seconds_count" + on) == n);
  BOOST_TEST(series_value(scrape.body, "process_open_fds") > 0);
}

BOOST_AUTO_TEST_CASE(readyz_is_503_naming_redis_while_it_is_down_and_200_once_it_is_back) {
  redis_server server;
  int port = free_port();
  process_runner p{mailroom_args("redis-streams.toml", server.port(), {listen_on(port)})};
  BOOST_REQUIRE_MESSAGE(eventually_true([&] { return http_get(port, "/readyz").status == 200; },
                                        30s),
                        p.err());
  BOOST_TEST(http_get(port, "/healthz").status == 200);
  server.pause(); // SIGSTOP: connections hang, as for a lost network
  BOOST_REQUIRE(eventually_true([&] { return http_get(port, "/readyz").status == 503; }, 15s));
  auto down = http_get(port, "/readyz");
  BOOST_TEST(down.body.find("\"component\":\"redis\"") != std::string::npos, down.body);
  BOOST_TEST(down.body.find("\"ready\":false") != std::string::npos, down.body);
  BOOST_TEST(http_get(port, "/healthz").status == 200); // alive all the same
  server.resume();
  BOOST_REQUIRE(eventually_true([&] { return http_get(port, "/readyz").status == 200; }, 15s));
  server.kill(); // refused connections now
  BOOST_REQUIRE(eventually_true([&] { return http_get(port, "/readyz").status == 503; }, 15s));
  server.restart();
  BOOST_REQUIRE_MESSAGE(
      eventually_true([&] { return http_get(port, "/readyz").status == 200; }, 20s),
      http_get(port, "/readyz").body);
  // The outage's failed polls, counted by their class.
  auto scrape = http_get(port, "/metrics");
  const std::string on = "{transport=\"redis-streams\",class=";
  BOOST_TEST(series_value(scrape.body, "mailroom_transport_errors_total" + on + "\"transient\"}") > 0,
             scrape.body);
  BOOST_TEST(series_value(scrape.body, "mailroom_transport_errors_total" + on + "\"fatal\"}") == 0);
  p.signal(SIGTERM);
  BOOST_TEST(p.wait(15s) == 0);
}

BOOST_AUTO_TEST_CASE(readyz_is_503_during_the_drain_while_healthz_stays_200) {
  int port = free_port();
  // The memory transport, slow demo handlers: the drain lasts seconds.
  process_runner p{memory_run(port, {"source.messages=1000000", "handler.latency_us=2000000",
                                     "engine.drain_timeout_ms=3000"})};
  BOOST_REQUIRE_MESSAGE(
      eventually_true([&] { return value_of(port, "mailroom_running{transport=\"memory\"}") > 0; },
                      30s),
      p.err());
  BOOST_TEST(http_get(port, "/readyz").status == 200);
  p.signal(SIGTERM);
  BOOST_REQUIRE(eventually_true([&] { return http_get(port, "/readyz").status == 503; }, 2s));
  auto r = http_get(port, "/readyz");
  BOOST_TEST(r.body.find("\"draining\":true") != std::string::npos, r.body);
  BOOST_TEST(http_get(port, "/healthz").status == 200);
  BOOST_TEST(value_of(port, "mailroom_draining{transport=\"memory\"}") == 1);
  BOOST_TEST(p.wait(20s) == 0);
}

BOOST_AUTO_TEST_CASE(a_port_in_use_stops_the_start_with_exit_1_naming_it) {
  int port = free_port();
  process_runner first{memory_run(port, {"source.messages=1000000", "handler.latency_us=1000"})};
  BOOST_REQUIRE(eventually_true([&] { return http_get(port, "/healthz").status == 200; }, 30s));
  process_runner second{memory_run(port, {})};
  BOOST_TEST(second.wait(20s) == 1);
  BOOST_TEST(second.err().find("cannot listen on 127.0.0.1:" + std::to_string(port)) !=
                 std::string::npos,
             second.err());
  first.signal(SIGTERM);
  BOOST_TEST(first.wait(20s) == 0);
}

BOOST_AUTO_TEST_CASE(a_malformed_listen_address_is_a_config_error_naming_the_key) {
  process_runner p{{MAILROOM_BINARY, "validate", "--config",
                    std::string{MAILROOM_SOURCE_DIR} + "/config/default.toml", "--set",
                    "http.listen=\"localhost\""}};
  BOOST_TEST(p.wait(10s) == 2);
  BOOST_TEST(p.err().find("http.listen") != std::string::npos, p.err());
}
