#define BOOST_TEST_MODULE cli_redis_scopes
#include <boost/test/unit_test.hpp>

// Two deployments sharing one Redis must not see each other's work: a
// crashed deployment's message is recovered by its own kind only, and one
// idempotency key on two streams is two messages (unless dedupe.scope says
// otherwise).

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include <unistd.h>

#include "clients/redis/redis_connection.hpp"
#include "tests/support/cli_redis.hpp"
#include "tests/support/engine_harness.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/redis_server.hpp"

using namespace mailroom::testing;
using namespace std::chrono_literals;

namespace {

std::string temp_path(const std::string& name) {
  return "/tmp/mailroom-scopes-" + std::to_string(::getpid()) + "-" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// -1 while the group does not exist yet.
long long pending(mailroom::redis_connection& admin, const std::string& stream) {
  auto r = admin.command({"XPENDING", stream, "mailroom"});
  if (!r || r.replies[0]->type != REDIS_REPLY_ARRAY) {
    return -1;
  }
  return r.replies[0]->element[0]->integer;
}

// True once the group has read up to `id` and nothing is pending.
bool consumed(mailroom::redis_connection& admin, const std::string& stream,
              const std::string& id) {
  if (pending(admin, stream) != 0) {
    return false;
  }
  auto g = admin.command({"XINFO", "GROUPS", stream});
  if (!g || g.replies[0]->type != REDIS_REPLY_ARRAY || g.replies[0]->elements == 0) {
    return false;
  }
  auto* info = g.replies[0]->element[0];
  for (std::size_t f = 0; f + 1 < info->elements; f += 2) {
    std::string field{info->element[f]->str, info->element[f]->len};
    auto* v = info->element[f + 1];
    if (field == "last-delivered-id" && v->str != nullptr) {
      return std::string{v->str, v->len} == id;
    }
  }
  return false;
}

std::string xadd(mailroom::redis_connection& admin, const std::string& stream,
                 const std::string& key) {
  auto r = run(admin, {"XADD", stream, "*", "key", key, "payload", "{}"});
  return std::string{r->str, r->len};
}

long long lines(const std::string& path) {
  auto text = slurp(path);
  return std::count(text.begin(), text.end(), '\n');
}

// A deployment on `stream` whose exec handler appends "<tag> <message id>"
// to `mark` (and then runs `then`), with fast recovery timings.
std::vector<std::string> deployment(int port, const std::string& stream,
                                    const std::string& tag, const std::string& mark,
                                    const std::string& then = "true",
                                    std::vector<std::string> extra = {}) {
  std::vector<std::string> sets{
      "transport.redis.stream=" + stream,
      "handler.type=exec",
      "handler.command=[\"/bin/sh\", \"-c\", \"echo " + tag + " $MAILROOM_MESSAGE_ID >> " +
          mark + "; " + then + "\"]",
      "engine.handler_timeout_ms=1000",
      "sweeper.stale_cutoff_ms=2000",
      "sweeper.interval_ms=200",
      "dedupe.claim_ttl_ms=3000",
      "transport.redis.block_ms=100"};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return mailroom_args("redis-streams.toml", port, std::move(sets));
}

std::string stop(process_runner& p) {
  p.signal(SIGTERM);
  int rc = p.wait(15s);
  BOOST_REQUIRE_MESSAGE(rc == 0, "exit " << rc << "\n" << p.out() << "\n" << p.err());
  return p.out();
}

int port_of(const redis_server& server) {
  return server.port();
}

bool eventually_true(const std::function<bool()>& pred, std::chrono::seconds limit) {
  return eventually(pred, std::chrono::duration_cast<std::chrono::milliseconds>(limit));
}

} // namespace

BOOST_AUTO_TEST_CASE(a_crashed_deployments_message_is_recovered_only_by_its_own_kind) {
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  auto mark_a = temp_path("a"), mark_b = temp_path("b"), mark_a2 = temp_path("a2");
  xadd(admin, "pa", "order-1");

  // A is killed with -9 while its handler runs: its dispatch record stays.
  {
    process_runner a{deployment(server.port(), "pa", "A", mark_a, "sleep 30")};
    BOOST_REQUIRE(eventually_true([&] { return !slurp(mark_a).empty(); }, 15s));
    a.signal(SIGKILL);
    a.wait(5s);
  }
  BOOST_REQUIRE(pending(admin, "pa") == 1);

  // B consumes another stream on the same Redis, long past A's stale cutoff
  // and claim expiry: it must neither see nor run A's message.
  xadd(admin, "pb", "other-1");
  process_runner b{deployment(server.port(), "pb", "B", mark_b)};
  std::this_thread::sleep_for(4500ms);
  auto out_b = stop(b);
  BOOST_TEST(summary_value(out_b, "recovered by sweeper") == 0);
  BOOST_TEST(summary_value(out_b, "acked") == 1);
  BOOST_TEST(slurp(mark_b).find("B ") != std::string::npos);
  BOOST_TEST(lines(mark_b) == 1);
  BOOST_TEST(pending(admin, "pa") == 1); // still A's, untouched

  // A restarted recovers its own message and finishes it.
  process_runner a2{deployment(server.port(), "pa", "A2", mark_a2)};
  BOOST_TEST(eventually_true([&] { return pending(admin, "pa") == 0; }, 20s));
  auto out_a2 = stop(a2);
  BOOST_TEST(summary_value(out_a2, "recovered by sweeper") >= 1);
  BOOST_TEST(slurp(mark_a2).find("A2 ") != std::string::npos);
  for (auto& p : {mark_a, mark_b, mark_a2}) {
    std::remove(p.c_str());
  }
}

BOOST_AUTO_TEST_CASE(one_key_on_two_streams_is_two_messages_by_default) {
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  auto mark = temp_path("keys");
  std::map<std::string, std::string> ids{{"sa", xadd(admin, "sa", "order-77")},
                                         {"sb", xadd(admin, "sb", "order-77")}};
  for (const char* stream : {"sa", "sb"}) {
    process_runner p{deployment(server.port(), stream, stream, mark)};
    BOOST_REQUIRE(
        eventually_true([&] { return consumed(admin, stream, ids[stream]); }, 15s));
    auto out = stop(p);
    BOOST_TEST(summary_value(out, "acked") == 1, stream);
    BOOST_TEST(summary_value(out, "of which duplicates") == 0, stream);
  }
  // Both handlers ran; each key is done once per topic.
  BOOST_TEST(lines(mark) == 2);
  BOOST_TEST(done_keys(admin, "mailroom:idem:consume:sa:order-77") == 1);
  BOOST_TEST(done_keys(admin, "mailroom:idem:consume:sb:order-77") == 1);
  std::remove(mark.c_str());
}

BOOST_AUTO_TEST_CASE(global_scope_makes_one_key_one_message_across_streams) {
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  auto mark = temp_path("global");
  std::map<std::string, std::string> ids{{"sc", xadd(admin, "sc", "order-78")},
                                         {"sd", xadd(admin, "sd", "order-78")}};
  std::string outs[2];
  int i = 0;
  for (const char* stream : {"sc", "sd"}) {
    process_runner p{deployment(server.port(), stream, stream, mark, "true",
                                {"dedupe.scope=global"})};
    BOOST_REQUIRE(
        eventually_true([&] { return consumed(admin, stream, ids[stream]); }, 15s));
    outs[i++] = stop(p);
  }
  BOOST_TEST(summary_value(outs[0], "of which duplicates") == 0);
  BOOST_TEST(summary_value(outs[1], "of which duplicates") == 1);
  BOOST_TEST(lines(mark) == 1);
  BOOST_TEST(done_keys(admin, "mailroom:idem:order-78") == 1);
  std::remove(mark.c_str());
}

BOOST_AUTO_TEST_CASE(summary_rows_add_up_with_retries_dead_letters_a_drain_and_a_recovery) {
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  const std::string stream = "mix";
  auto demo = [&](const std::string& latency_us, std::vector<std::string> extra) {
    std::vector<std::string> sets{"transport.redis.stream=" + stream,
                                  "handler.type=demo",
                                  "handler.latency_us=" + latency_us,
                                  "engine.handler_timeout_ms=1500",
                                  "sweeper.stale_cutoff_ms=2000",
                                  "sweeper.interval_ms=200",
                                  "dedupe.claim_ttl_ms=2500",
                                  "transport.redis.block_ms=100",
                                  "retry.base_ms=1",
                                  "retry.cap_ms=5"};
    sets.insert(sets.end(), extra.begin(), extra.end());
    return mailroom_args("redis-streams.toml", port_of(server), std::move(sets));
  };
  // A first process dies mid-handler: its record is left for the sweeper.
  xadd(admin, stream, "crashed-1");
  {
    process_runner first{demo("30000000", {})};
    BOOST_REQUIRE(eventually_true([&] { return pending(admin, stream) == 1; }, 15s));
    std::this_thread::sleep_for(300ms);
    first.signal(SIGKILL);
    first.wait(5s);
  }
  std::this_thread::sleep_for(2600ms); // past the stale cutoff and the claim
  for (int i = 0; i < 400; ++i) {
    std::string payload = i % 40 == 0   ? "{not json"
                          : i % 10 == 0 ? R"({"fail_attempts":1})"
                                        : "{\"n\":" + std::to_string(i) + "}";
    run(admin, {"XADD", stream, "*", "key", "k-" + std::to_string(i), "payload", payload});
  }
  // 400 messages of 50 ms on 4 workers take 5 s: stopped after 1 s with no
  // drain time, what is in flight is handed back.
  process_runner second{demo("50000", {"engine.drain_timeout_ms=0"})};
  std::this_thread::sleep_for(1000ms);
  auto out = stop(second);
  auto v = [&](const char* row) { return summary_value(out, row); };
  BOOST_TEST_MESSAGE(out);
  BOOST_TEST(v("recovered by sweeper") >= 1);
  BOOST_TEST(v("retried") > 0);
  BOOST_TEST(v("dead-lettered") > 0);
  BOOST_TEST(v("of which at the drain") > 0);
  BOOST_TEST(v("deferred (handed back)") >= v("of which at the drain"));
  BOOST_TEST(v("deliveries polled") + v("recovered by sweeper") ==
             v("acked") + v("retried") + v("deferred (handed back)") + v("dead-lettered") +
                 v("fenced settles") + v("ack failed") + v("still in flight"));
  BOOST_TEST(v("DLQ holds") == v("dead-lettered"));
}
