#define BOOST_TEST_MODULE cli_redis_sweep
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "clients/redis/redis_connection.hpp"
#include "core/dedupe_key.hpp"
#include "stores/redis/redis_claim_store.hpp"
#include "tests/support/cli_redis.hpp"
#include "tests/support/free_port.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/redis_admin.hpp"
#include "tests/support/redis_server.hpp"

// `mailroom sweep`: one recovery tick from the command line, against a real
// redis-server holding what a crashed consumer left behind (pending stream
// entries, their dispatch records), planted here.

using namespace mailroom;
using namespace mailroom::testing;
using namespace std::chrono_literals;

namespace {

const std::string stream = "orders";
const std::string group = "mailroom";

redis_settings settings_for(const redis_server& server) {
  redis_settings s;
  s.port = server.port();
  return s;
}

// What a consumer that crashed mid-batch leaves: `stale` entries dispatched an
// hour ago and `expired` ones whose claim ran out a second ago, all pending
// in the group under the dead consumer, each with its dispatch record.
void plant(redis_server& server, int stale, int expired) {
  redis_connection admin{settings_for(server)};
  (void)admin.command({"XGROUP", "CREATE", stream, group, "0", "MKSTREAM"});
  std::vector<std::string> ids;
  for (int i = 0; i < stale + expired; ++i) {
    auto r = admin.command({"XADD", stream, "*", "key", "k-" + std::to_string(i), "payload",
                            "{\"n\":" + std::to_string(i) + "}"});
    BOOST_REQUIRE(static_cast<bool>(r));
    ids.emplace_back(r.replies[0]->str, r.replies[0]->len);
  }
  BOOST_REQUIRE(static_cast<bool>(
      admin.command({"XREADGROUP", "GROUP", group, "crashed", "STREAMS", stream, ">"})));
  redis_claim_store claims{settings_for(server), "redis-streams:" + stream + ":" + group};
  std::vector<dispatch_record> records;
  auto now = clock::now();
  for (int i = 0; i < stale + expired; ++i) {
    dispatch_record r;
    r.message.id = ids[static_cast<std::size_t>(i)];
    r.message.handle.handle = r.message.id;
    r.message.key = "k-" + std::to_string(i);
    r.message.topic = stream;
    r.message.payload = "{\"n\":" + std::to_string(i) + "}";
    r.key = dedupe_key(r.message, dedupe_scope::topic);
    r.token = 1000 + static_cast<fencing_token>(i);
    bool is_stale = i < stale;
    r.dispatched = is_stale ? now - 1h : now;
    r.claim_expires = is_stale ? now + 1h : now - 1s;
    records.push_back(std::move(r));
  }
  BOOST_REQUIRE(static_cast<bool>(claims.record_dispatch(std::move(records))));
}

std::vector<std::string> sweep_args(int port, const std::string& mark,
                                    std::vector<std::string> sets = {}) {
  sets.push_back("handler.type=\"exec\"");
  sets.push_back("handler.command=[\"/bin/sh\", \"-c\", \"echo $MAILROOM_MESSAGE_ID >> " +
                 mark + "\"]");
  sets.push_back("engine.handler_timeout_ms=5000");
  sets.push_back("sweeper.stale_cutoff_ms=60000");
  auto args = mailroom_args("redis-streams.toml", port, std::move(sets), "sweep");
  args.push_back("--json");
  return args;
}

nlohmann::json summary_of(const process_runner& p) {
  auto out = p.out();
  auto j = nlohmann::json::parse(out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " << out << "\n" << p.err());
  return j;
}

std::multiset<std::string> lines_in(const std::string& path) {
  std::ifstream in{path};
  std::multiset<std::string> out;
  for (std::string line; std::getline(in, line);) {
    out.insert(line);
  }
  return out;
}

long long pending_entries(redis_server& server) {
  redis_connection admin{settings_for(server)};
  auto r = admin.command({"XPENDING", stream, group});
  BOOST_REQUIRE(static_cast<bool>(r));
  return r.replies[0]->element[0]->integer;
}

std::string mark_path(const std::string& tag) {
  auto p = "/tmp/mailroom-sweep-" + std::to_string(::getpid()) + "-" + tag;
  std::remove(p.c_str());
  return p;
}

} // namespace

BOOST_AUTO_TEST_CASE(one_sweep_recovers_what_was_planted_and_settles_it) {
  redis_server server;
  plant(server, 3, 5);
  auto mark = mark_path("all");
  process_runner p{sweep_args(server.port(), mark)};
  BOOST_REQUIRE_MESSAGE(p.wait(60s) == 0, p.out() << p.err());
  auto j = summary_of(p);
  BOOST_TEST(j["stale_markers"]["found"] == 3);
  BOOST_TEST(j["stale_markers"]["recovered"] == 3);
  BOOST_TEST(j["stale_markers"]["transient_errors"] == 0);
  BOOST_TEST(j["reclaimable_claims"]["found"] == 5);
  BOOST_TEST(j["reclaimable_claims"]["processed"] == 5);
  BOOST_TEST(j["errors"].empty());
  BOOST_TEST(j["settled"]["acked"] == 8);
  BOOST_TEST(j["settled"]["complete"] == true);
  auto marks = lines_in(mark);
  BOOST_TEST(marks.size() == 8u); // each handled once
  BOOST_TEST(std::set<std::string>(marks.begin(), marks.end()).size() == 8u);
  BOOST_TEST(pending_entries(server) == 0); // acked in the stream's group
  redis_claim_store claims{settings_for(server), "redis-streams:" + stream + ":" + group};
  BOOST_TEST(claims.pending() == 0u); // every record terminal

  // A second sweep finds nothing.
  process_runner again{sweep_args(server.port(), mark)};
  BOOST_REQUIRE(again.wait(60s) == 0);
  auto k = summary_of(again);
  BOOST_TEST(k["stale_markers"]["found"] == 0);
  BOOST_TEST(k["reclaimable_claims"]["found"] == 0);
  BOOST_TEST(lines_in(mark).size() == 8u);
  std::remove(mark.c_str());
}

BOOST_AUTO_TEST_CASE(the_limit_bounds_each_stage_of_one_sweep) {
  redis_server server;
  plant(server, 4, 4);
  auto mark = mark_path("limit");
  process_runner p{sweep_args(server.port(), mark, {"sweeper.limit=3"})};
  BOOST_REQUIRE_MESSAGE(p.wait(60s) == 0, p.out() << p.err());
  auto j = summary_of(p);
  BOOST_TEST(j["stale_markers"]["found"] == 3);
  BOOST_TEST(j["reclaimable_claims"]["found"] == 3);
  BOOST_TEST(j["settled"]["acked"] == 6);
  BOOST_TEST(lines_in(mark).size() == 6u);
  BOOST_TEST(pending_entries(server) == 2);
  // The next one takes the rest.
  process_runner rest{sweep_args(server.port(), mark, {"sweeper.limit=3"})};
  BOOST_REQUIRE(rest.wait(60s) == 0);
  auto k = summary_of(rest);
  BOOST_TEST(k["stale_markers"]["found"] == 1);
  BOOST_TEST(k["reclaimable_claims"]["found"] == 1);
  BOOST_TEST(lines_in(mark).size() == 8u);
  BOOST_TEST(pending_entries(server) == 0);
  std::remove(mark.c_str());
}

BOOST_AUTO_TEST_CASE(an_unreachable_store_is_the_error_sample_and_exit_one) {
  auto mark = mark_path("down");
  process_runner p{sweep_args(free_port(), mark)};
  BOOST_REQUIRE_EQUAL(p.wait(60s), 1);
  auto j = summary_of(p);
  BOOST_REQUIRE(j["errors"].size() == 1u);
  auto error = j["errors"][0].get<std::string>();
  BOOST_TEST(error.find("cannot reach Redis") != std::string::npos, error);
  BOOST_TEST(j["settled"]["acked"] == 0);
}

BOOST_AUTO_TEST_CASE(a_configuration_that_cannot_sweep_is_a_config_error) {
  for (auto [set, key] : {std::pair<std::string, std::string>{"sweeper.store=\"memory\"",
                                                              "sweeper.store"},
                          {"sweeper.enabled=false", "sweeper.enabled"}}) {
    process_runner p{mailroom_args("redis-streams.toml", 6379, {set}, "sweep")};
    BOOST_TEST(p.wait(30s) == 2, set);
    BOOST_TEST(p.err().find(key) != std::string::npos, p.err());
  }
}
