#define BOOST_TEST_MODULE cli_redis_streams
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "clients/redis/redis_connection.hpp"
#include "tests/support/cli_redis.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/redis_server.hpp"

using namespace mailroom::testing;
using namespace std::chrono_literals;

namespace {

const std::string stream = "orders";
const std::string group = "mailroom";
const std::string dlq = "orders:dlq";

// Every `poison_every`-th entry (when non-zero) carries malformed JSON, which
// the demo handler dead-letters.
constexpr int poison_every = 100;

// `mailroom run` on the streams example, pointed at `port`, plus `sets`.
std::vector<std::string> run_args(int port, std::vector<std::string> sets) {
  return mailroom_args("redis-streams.toml", port, std::move(sets));
}

// Appends `n` entries with distinct keys "<tag>-<i>" and returns the last id.
std::string fill(mailroom::redis_connection& admin, const std::string& tag, int n) {
  std::string last;
  constexpr int chunk = 500;
  for (int from = 0; from < n; from += chunk) {
    std::vector<mailroom::redis_command> cmds;
    for (int i = from; i < std::min(n, from + chunk); ++i) {
      bool poison = (i + 1) % poison_every == 0;
      cmds.push_back(
          {"XADD", stream, "*", "key", tag + "-" + std::to_string(i), "payload",
           poison ? std::string{"{not json"} : "{\"id\":" + std::to_string(i) + "}"});
    }
    auto r = admin.pipeline(cmds);
    BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), "XADD failed: " + r.status.what);
    auto& tail = r.replies.back();
    last.assign(tail->str, tail->len);
  }
  return last;
}

// The group's pending count and last-delivered id.
struct group_state {
  long long pending = -1;
  std::string last_delivered;
};

group_state state_of(mailroom::redis_connection& admin) {
  group_state s;
  auto r = admin.command({"XPENDING", stream, group});
  if (!r || r.replies[0]->type != REDIS_REPLY_ARRAY || r.replies[0]->elements < 1) {
    return s;
  }
  s.pending = r.replies[0]->element[0]->integer;
  auto g = admin.command({"XINFO", "GROUPS", stream});
  if (!g || g.replies[0]->type != REDIS_REPLY_ARRAY) {
    return s;
  }
  for (std::size_t i = 0; i < g.replies[0]->elements; ++i) {
    auto* info = g.replies[0]->element[i];
    std::string name, last;
    for (std::size_t f = 0; f + 1 < info->elements; f += 2) {
      std::string field{info->element[f]->str, info->element[f]->len};
      auto* v = info->element[f + 1];
      std::string value = v->str != nullptr ? std::string{v->str, v->len} : "";
      if (field == "name") {
        name = value;
      } else if (field == "last-delivered-id") {
        last = value;
      }
    }
    if (name == group) {
      s.last_delivered = last;
    }
  }
  return s;
}

// Polls until nothing is pending and the group has read up to `last_id`.
void wait_settled(mailroom::redis_connection& admin, const std::string& last_id,
                  std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  group_state s;
  while (std::chrono::steady_clock::now() < deadline) {
    s = state_of(admin);
    if (s.pending == 0 && s.last_delivered == last_id) {
      return;
    }
    std::this_thread::sleep_for(100ms);
  }
  BOOST_FAIL("not settled within " << limit.count() << " s: pending " << s.pending
                                   << ", last delivered " << s.last_delivered
                                   << ", last entry " << last_id);
}

// Sends SIGTERM and requires exit 0 within a few seconds; returns stdout.
std::string terminate(process_runner& p) {
  p.signal(SIGTERM);
  int rc = p.wait(10s);
  BOOST_REQUIRE_MESSAGE(rc == 0, "exit " << rc << "\nstdout:\n"
                                         << p.out() << "\nstderr:\n"
                                         << p.err());
  return p.out();
}

long long handled(const std::string& out) {
  return summary_value(out, "acked") + summary_value(out, "dead-lettered");
}

// The entry ids recorded in the dead-letter stream, requiring each once.
std::set<std::string> dead_lettered_ids(mailroom::redis_connection& admin) {
  auto owned = run(admin, {"XRANGE", dlq, "-", "+"});
  const redisReply* reply = owned.get();
  BOOST_REQUIRE(reply->type == REDIS_REPLY_ARRAY);
  std::set<std::string> ids;
  for (std::size_t i = 0; i < reply->elements; ++i) {
    auto* fields = reply->element[i]->element[1];
    for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
      if (std::string{fields->element[f]->str, fields->element[f]->len} == "entry_id") {
        auto* v = fields->element[f + 1];
        std::string id{v->str, v->len};
        BOOST_CHECK_MESSAGE(ids.insert(id).second, "entry dead-lettered twice: " << id);
      }
    }
  }
  BOOST_TEST(ids.size() == reply->elements);
  return ids;
}

} // namespace

BOOST_AUTO_TEST_CASE(run_consumes_a_prefilled_stream_and_drains_on_sigterm) {
  constexpr int n = 2000;
  constexpr int malformed = 3; // entries without the payload field
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  for (int i = 0; i < malformed; ++i) {
    run(admin, {"XADD", stream, "*", "key", "bad-" + std::to_string(i), "body", "x"});
  }
  auto last = fill(admin, "one", n);

  process_runner p{run_args(server.port(), {"transport.redis.consumer=only"})};
  wait_settled(admin, last, 60s);
  auto out = terminate(p);
  BOOST_TEST(handled(out) == n);
  BOOST_TEST(summary_value(out, "dead-lettered") == n / poison_every);
  BOOST_TEST(summary_value(out, "DLQ holds") == n / poison_every + malformed);
  BOOST_TEST(summary_value(out, "rejected by transport") == malformed);
  BOOST_TEST(integer_of(admin, {"XLEN", dlq}) == n / poison_every + malformed);
  BOOST_TEST(dead_lettered_ids(admin).size() ==
             static_cast<std::size_t>(n / poison_every + malformed));
  BOOST_TEST(done_keys(admin) == n - n / poison_every);
  // The consumer held nothing pending at exit, so it left the group.
  BOOST_TEST(integer_of(admin, {"XLEN", stream}) == n + malformed);
  auto consumers = run(admin, {"XINFO", "CONSUMERS", stream, group});
  BOOST_TEST(consumers->elements == 0u);
}

BOOST_AUTO_TEST_CASE(two_processes_in_one_group_handle_each_entry_once) {
  constexpr int n = 4000;
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  auto last = fill(admin, "two", n);

  process_runner a{run_args(server.port(), {"transport.redis.consumer=a"})};
  process_runner b{run_args(server.port(), {"transport.redis.consumer=b"})};
  wait_settled(admin, last, 90s);
  auto out_a = terminate(a);
  auto out_b = terminate(b);
  BOOST_TEST(handled(out_a) + handled(out_b) == n);
  BOOST_TEST(summary_value(out_a, "of which duplicates") +
                 summary_value(out_b, "of which duplicates") ==
             0);
  BOOST_TEST(integer_of(admin, {"XLEN", dlq}) == n / poison_every);
  BOOST_TEST(done_keys(admin) == n - n / poison_every);
}

BOOST_AUTO_TEST_CASE(run_survives_redis_killed_and_restarted_mid_run) {
  constexpr int n = 20000;
  char dir_template[] = "/tmp/mailroom-streams-XXXXXX";
  BOOST_REQUIRE(::mkdtemp(dir_template) != nullptr);
  std::string dir = dir_template;
  {
    redis_server::options opts;
    opts.persist_dir = dir;
    redis_server server{opts};
    std::string last;
    {
      mailroom::redis_connection admin{admin_settings(server)};
      last = fill(admin, "kill", n);
    }

    // Short take-over and claim times so entries whose settlement was lost
    // in the outage come back within seconds; no over-delivery parking.
    process_runner p{
        run_args(server.port(),
                 {"transport.redis.consumer=survivor", "engine.handler_timeout_ms=1000",
                  "transport.redis.min_idle_ms=2000", "transport.redis.max_deliveries=0",
                  "dedupe.claim_ttl_ms=2000", "dedupe.in_flight_delay_ms=200",
                  "dedupe.store_error_delay_ms=200", "sweeper.stale_cutoff_ms=3000",
                  "sweeper.interval_ms=500"})};
    std::this_thread::sleep_for(300ms);
    server.kill();
    std::this_thread::sleep_for(500ms);
    server.restart();

    mailroom::redis_connection admin{admin_settings(server)};
    BOOST_REQUIRE(integer_of(admin, {"XLEN", stream}) == n); // the data survived
    wait_settled(admin, last, 120s);
    auto out = terminate(p);
    // Every entry settled exactly one way: done in the dedupe store or in the
    // dead-letter stream, never both, none twice. The summary may count more
    // (an ack lost in the outage is redone as a duplicate), never fewer,
    // except for an ack Redis applied just before it was killed and whose
    // reply never came: the process counts it as "ack failed" (it cannot
    // know), and the entry, no longer pending, is not delivered again.
    auto dead = dead_lettered_ids(admin);
    BOOST_TEST(dead.size() == static_cast<std::size_t>(n / poison_every));
    BOOST_TEST(done_keys(admin) + static_cast<long long>(dead.size()) == n);
    auto counted = handled(out) + summary_value(out, "ack failed");
    BOOST_CHECK_MESSAGE(counted >= n, "handled " << handled(out) << " and ack failed "
                                                 << summary_value(out, "ack failed")
                                                 << " of " << n << "\nstdout:\n"
                                                 << out << "\nstderr:\n"
                                                 << p.err());
    BOOST_TEST(state_of(admin).pending == 0);
  }
  std::system(("rm -rf '" + dir + "'").c_str());
}

BOOST_AUTO_TEST_CASE(unreachable_redis_at_start_exits_1_with_a_clear_message) {
  int port = 0;
  {
    redis_server server;
    port = server.port();
  } // stopped: nothing listens on the port now
  process_runner p{run_args(port, {})};
  int rc = p.wait(30s);
  BOOST_TEST(rc == 1);
  BOOST_CHECK_MESSAGE(p.err().find("mailroom: cannot reach Redis at 127.0.0.1:" +
                                   std::to_string(port) + ": ") != std::string::npos,
                      "stderr: " << p.err());
}

BOOST_AUTO_TEST_CASE(a_card_number_in_an_unparsable_payload_never_reaches_the_dlq) {
  // The example masks $.card.number; a payload that does not parse (the
  // reason the demo handler dead-letters it) used to go to the DLQ verbatim.
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  const std::string payload = R"({"card":{"number":"4111111111111111"},"bad":)";
  auto id = run(admin, {"XADD", stream, "*", "key", "order-9", "payload", payload});
  std::string last{id->str, id->len};
  process_runner p{run_args(server.port(), {})};
  wait_settled(admin, last, 30s);
  auto out = terminate(p);
  BOOST_TEST(summary_value(out, "dead-lettered") == 1);
  auto records = run(admin, {"XRANGE", dlq, "-", "+"});
  BOOST_REQUIRE(records->elements == 1u);
  std::string fields;
  for (std::size_t i = 0; i < records->element[0]->element[1]->elements; ++i) {
    auto* f = records->element[0]->element[1]->element[i];
    fields += std::string{f->str, f->len} + "\n";
  }
  BOOST_TEST(fields.find("4111111111111111") == std::string::npos, fields);
  BOOST_TEST(fields.find("[redacted: not JSON, 44 bytes, sha256 ") != std::string::npos,
             fields);
}
