#define BOOST_TEST_MODULE redis_stores
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "clients/redis/redis_connection.hpp"
#include "core/unix_time.hpp"
#include "stores/redis/redis_attempt_log.hpp"
#include "stores/redis/redis_checkpoint_store.hpp"
#include "stores/redis/redis_claim_store.hpp"
#include "stores/redis/redis_idempotency_store.hpp"
#include "tests/support/attempt_log_contract.hpp"
#include "tests/support/redis_admin.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/reply_dropping_proxy.hpp"
#include "tests/support/scoped_env.hpp"
#include "tests/support/store_contract.hpp"

using namespace std::chrono_literals;
using mailroom::checkpoint;
using mailroom::claim_result;
using mailroom::done_mark;
using mailroom::dispatch_record;
using mailroom::failure_class;
using mailroom::fence_result;
using mailroom::fencing_token;
using mailroom::redis_checkpoint_store;
using mailroom::redis_claim_store;
using mailroom::redis_connection;
using mailroom::redis_idempotency_store;
using mailroom::redis_settings;
using mailroom::terminal_mark;
using mailroom::testing::integer_of;
using mailroom::testing::redis_server;
using mailroom::testing::reply_dropping_proxy;
using mailroom::testing::run;
using mailroom::testing::scoped_env;
using steady = mailroom::clock;

namespace {

namespace contract = mailroom::testing::store_contract;
using contract::claim_one;
using contract::complete_one;
using contract::keys_of;
using contract::record;
using state = claim_result::state;

// Time passes for a real server only by waiting.
void sleep_for(std::chrono::milliseconds d) {
  std::this_thread::sleep_for(d);
}

// Short timeouts and a quick reconnect backoff keep outage tests fast.
redis_settings settings_for(const redis_server& server,
                            std::string prefix = "mailroom:") {
  redis_settings s;
  s.port = server.port();
  s.key_prefix = std::move(prefix);
  s.connect_timeout = 500ms;
  s.command_timeout = 1000ms;
  s.reconnect.base = 20ms;
  s.reconnect.cap = 200ms;
  return s;
}

// The settings of settings_for(server), connecting through `proxy`.
redis_settings settings_through(const reply_dropping_proxy& proxy,
                                const redis_server& server) {
  auto s = settings_for(server);
  s.port = proxy.port();
  return s;
}

std::vector<std::string> all_keys(redis_connection& admin) {
  auto reply = run(admin, {"KEYS", "*"});
  std::vector<std::string> out;
  for (std::size_t i = 0; i < reply->elements; ++i) {
    out.emplace_back(mailroom::reply_text(reply->element[i]));
  }
  return out;
}

// Returns how often the server ran `command`, from INFO commandstats.
// Reads one checkpoint, requiring the store to answer.
std::optional<std::string> read_checkpoint(redis_checkpoint_store& s,
                                           const std::string& key,
                                           const std::string& step) {
  std::optional<std::string> out;
  auto r = s.read(key, step, out);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), "checkpoint read failed: " + r.what);
  return out;
}

// Every byte value, repeated to 1 MiB.
std::string blob_1mib() {
  std::string out(1 << 20, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(i * 7 % 256);
  }
  return out;
}

std::vector<std::string> odd_strings() {
  return {"with space",
          "crlf\r\nkey",
          "%s%n%d%%",
          std::string{"nul\0key\0", 9},
          "\xff\xfe non-utf8",
          "a\r\nFLUSHALL\r\n",
          "*1\r\n$4\r\nPING\r\n",
          ""};
}

bool near(steady::time_point a, steady::time_point b) {
  return a - b < 3ms && b - a < 3ms;
}

// Collects everything logged through spdlog's default logger while alive.
class log_capture {
public:
  log_capture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(text_)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~log_capture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::string text() const { return text_.str(); }

private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

template <class F> std::chrono::milliseconds timed(F f) {
  auto start = steady::now();
  f();
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
}

} // namespace

BOOST_TEST_DONT_PRINT_LOG_VALUE(failure_class)

// ---- idempotency store ----------------------------------------------------------

// A fresh server and an idempotency store on it, for the contract tests.
struct on_a_redis_store {
  redis_server server;
  redis_idempotency_store s{settings_for(server)};
  contract::timing time{sleep_for, 5ms}; // TTLs of 500 ms: room for slow sleeps
};

MAILROOM_IDEMPOTENCY_STORE_CONTRACT(on_a_redis_store)

BOOST_AUTO_TEST_CASE(a_batch_is_claimed_in_one_round_trip) {
  redis_server server;
  redis_idempotency_store s{settings_for(server)};
  BOOST_REQUIRE(claim_one(s, "warm-up").status == state::fresh); // connects
  // One pipelined SET NX PX GET per key, all in one round trip.
  std::vector<std::string> names;
  for (int i = 0; i < 256; ++i) {
    names.push_back("bulk-" + std::to_string(i));
  }
  names.push_back("bulk-0"); // repeated: in flight after its first claim
  std::vector<std::string_view> keys(names.begin(), names.end());
  auto set_before = server.calls_of("set");
  auto trips_before = s.connection().round_trips();
  auto bulk = s.claim(keys, 10s);
  BOOST_TEST(server.calls_of("set") - set_before == 257);
  BOOST_TEST(s.connection().round_trips() - trips_before == 1u);
  BOOST_REQUIRE(bulk.size() == 257u);
  BOOST_TEST(bulk[0].status == state::fresh);
  BOOST_TEST(bulk[256].status == state::in_flight);
}

BOOST_AUTO_TEST_CASE(completions_without_a_result_cost_one_bitmap_write_per_group) {
  // 1500 keys are two groups (1024 + 476): two leases, then one BITOP per
  // group and no SET per key to complete them all, in one round trip.
  redis_server server;
  redis_idempotency_store s{settings_for(server), 60s};
  auto warm_up = claim_one(s, "warm-up"); // connects and loads the script
  BOOST_REQUIRE(complete_one(s, "warm-up", warm_up.token, "", 60s) == fence_result::applied);
  std::vector<std::string> names;
  for (int i = 0; i < 1500; ++i) {
    names.push_back("many-" + std::to_string(i));
  }
  std::vector<std::string_view> keys(names.begin(), names.end());
  auto leases_before = server.calls_of("psetex");
  auto claims = s.claim(keys, 10s);
  BOOST_TEST(server.calls_of("psetex") - leases_before == 2);
  std::vector<done_mark> marks;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    BOOST_REQUIRE(claims[i].status == state::fresh);
    marks.push_back({keys[i], claims[i].token, {}});
  }
  auto set_before = server.calls_of("set");
  auto trips_before = s.connection().round_trips();
  auto done = s.complete(marks, 60s);
  BOOST_TEST(s.connection().round_trips() - trips_before == 1u);
  BOOST_TEST(server.calls_of("bitop") == 3); // the warm-up's and the two groups'
  BOOST_TEST(server.calls_of("set") - set_before == 2); // the scratch bitmap, per group
  BOOST_REQUIRE(done.size() == keys.size());
  BOOST_TEST(std::count(done.begin(), done.end(), fence_result::applied) == 1500);
  auto again = s.claim(keys, 10s);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    BOOST_TEST_REQUIRE((again[i].status == state::done), "key " << i);
    BOOST_TEST(again[i].result.empty());
  }
}

BOOST_AUTO_TEST_CASE(a_completion_without_a_result_is_fenced_like_one_with) {
  // The contract's fencing, for the done bits: a claim whose lease ran out
  // is taken over by another store object (another process); the old claim
  // can then neither complete nor release; what was done before stays done.
  redis_server server;
  // complete_one's ttl: the completions set bits.
  redis_idempotency_store a{settings_for(server), 10s};
  redis_idempotency_store b{settings_for(server), 10s};
  auto first = a.claim({"done-early", "slow", "own"}, 300ms);
  BOOST_REQUIRE(first.size() == 3u);
  BOOST_TEST(complete_one(a, "done-early", first[0].token, "") == fence_result::applied);
  BOOST_TEST(complete_one(a, "done-early", first[0].token, "") == fence_result::applied);
  BOOST_TEST(claim_one(b, "slow").status == state::in_flight);
  BOOST_TEST(b.release("slow", first[1].token) == fence_result::fenced);
  std::this_thread::sleep_for(400ms); // the lease ran out
  auto taken = claim_one(b, "slow");
  BOOST_REQUIRE(taken.status == state::fresh);
  BOOST_TEST(complete_one(a, "slow", first[1].token, "") == fence_result::fenced);
  BOOST_TEST(a.release("slow", first[1].token) == fence_result::fenced);
  BOOST_TEST(claim_one(a, "slow").status == state::in_flight); // b's claim survived
  // Done before the lease ran out: still done, and a repeat still applies.
  BOOST_TEST(claim_one(b, "done-early").status == state::done);
  BOOST_TEST(complete_one(a, "done-early", first[0].token, "") == fence_result::applied);
  // An expired claim fences its own token, and the key is claimable again.
  BOOST_TEST(complete_one(a, "own", first[2].token, "") == fence_result::fenced);
  BOOST_TEST(a.release("own", first[2].token) == fence_result::fenced);
  BOOST_TEST(claim_one(b, "own").status == state::fresh);
  BOOST_TEST(complete_one(b, "slow", taken.token, "") == fence_result::applied);
  BOOST_TEST(b.release("slow", taken.token) == fence_result::fenced); // done stays done
  BOOST_TEST(claim_one(a, "slow").status == state::done);
  BOOST_TEST(complete_one(a, "never-claimed", 42, "") == fence_result::fenced);
  BOOST_TEST(complete_one(a, "never-claimed", 0, "") == fence_result::fenced);
}

BOOST_AUTO_TEST_CASE(done_bits_expire_with_the_results_ttl) {
  redis_server server;
  redis_idempotency_store s{settings_for(server), 300ms};
  auto c = claim_one(s, "short", 100ms);
  BOOST_REQUIRE(c.status == state::fresh);
  BOOST_TEST(complete_one(s, "short", c.token, "", 300ms) == fence_result::applied);
  BOOST_TEST(claim_one(s, "short").status == state::done);
  std::this_thread::sleep_for(350ms);
  BOOST_TEST(claim_one(s, "short").status == state::fresh);
  // Another ttl than the store's result_ttl is written on the key itself.
  auto longer = claim_one(s, "longer", 10s);
  BOOST_TEST(complete_one(s, "longer", longer.token, "", 120s) == fence_result::applied);
  redis_connection admin{settings_for(server)};
  auto pttl = integer_of(admin, {"PTTL", s.redis_key("longer")});
  BOOST_TEST((pttl > 60000 && pttl <= 120000));
  BOOST_TEST(claim_one(s, "longer").status == state::done);
}

BOOST_AUTO_TEST_CASE(a_key_refused_by_redis_is_unavailable_alone) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_idempotency_store s{settings_for(server)};
  run(admin, {"HSET", s.redis_key("wrong"), "f", "v"}); // SET GET on a hash: WRONGTYPE
  auto r = s.claim({"a", "wrong", "b"}, 10s);
  BOOST_REQUIRE(r.size() == 3u);
  BOOST_TEST(r[0].status == state::fresh);
  BOOST_TEST(r[1].status == state::unavailable);
  BOOST_TEST(r[2].status == state::fresh);
  // The claims that went through are usable.
  BOOST_TEST(complete_one(s, "a", r[0].token) == fence_result::applied);
  BOOST_TEST(complete_one(s, "b", r[2].token) == fence_result::applied);
}

BOOST_AUTO_TEST_CASE(claims_and_results_carry_their_ttl_in_redis) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_idempotency_store s{settings_for(server)};
  auto c = claim_one(s, "short", 80ms);
  BOOST_TEST(c.status == state::fresh);
  // The claim is its group's lease; the key outlives it by the result's ttl,
  // to say who had it.
  auto pttl = integer_of(admin, {"PTTL", s.lease_key_of(c.token)});
  BOOST_TEST((pttl > 0 && pttl <= 80));
  pttl = integer_of(admin, {"PTTL", s.redis_key("short")});
  BOOST_TEST((pttl > 86400000 && pttl <= 86400080));
  BOOST_TEST(complete_one(s, "short", c.token, "r", 5000ms) == fence_result::applied);
  pttl = integer_of(admin, {"PTTL", s.redis_key("short")});
  BOOST_TEST((pttl > 80 && pttl <= 5000));
  // A completion without a result for the store's result_ttl sets its bit,
  // kept for that ttl.
  redis_idempotency_store short_results{settings_for(server), 5000ms};
  auto bare = claim_one(short_results, "bare", 80ms);
  BOOST_TEST(complete_one(short_results, "bare", bare.token, "", 5000ms) ==
             fence_result::applied);
  pttl = integer_of(admin, {"PTTL", short_results.done_key_of(bare.token)});
  BOOST_TEST((pttl > 80 && pttl <= 5000));
}

BOOST_AUTO_TEST_CASE(a_fenced_complete_leaves_what_it_found) {
  // A key that was not the caller's holds exactly what it held, with its
  // TTL, and a batch mixing fenced and applied completes applies only the
  // latter.
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_idempotency_store s{settings_for(server)};
  auto value_of = [&](const std::string& key) {
    return std::string{mailroom::reply_text(run(admin, {"GET", s.redis_key(key)}).get())};
  };
  auto mine = claim_one(s, "mine", 10s);
  const auto mine_value = value_of("mine"); // the claim, as the done value keeps it
  auto theirs = claim_one(s, "theirs", 10s);
  auto finished = claim_one(s, "finished", 10s);
  BOOST_REQUIRE(complete_one(s, "finished", finished.token, "first") == fence_result::applied);
  const auto theirs_before = value_of("theirs");
  const auto theirs_pttl = integer_of(admin, {"PTTL", s.redis_key("theirs")});
  const auto finished_before = value_of("finished");
  std::vector<done_mark> batch{{"theirs", theirs.token + 1, "stale"},
                               {"mine", mine.token, "ok"},
                               {"finished", finished.token + 1, "stale"},
                               {"absent", 77, "stale"}};
  auto r = s.complete(batch, 60s);
  BOOST_REQUIRE(r.size() == 4u);
  BOOST_TEST((r[0] == fence_result::fenced));
  BOOST_TEST((r[1] == fence_result::applied));
  BOOST_TEST((r[2] == fence_result::fenced));
  BOOST_TEST((r[3] == fence_result::fenced));
  BOOST_TEST(value_of("theirs") == theirs_before);
  BOOST_TEST(value_of("finished") == finished_before);
  BOOST_TEST(value_of("mine") == "done:" + mine_value + ":ok");
  BOOST_TEST(integer_of(admin, {"EXISTS", s.redis_key("absent")}) == 0);
  auto pttl = integer_of(admin, {"PTTL", s.redis_key("theirs")});
  BOOST_TEST((pttl > 0 && pttl <= theirs_pttl)); // its own ttl, not the result's minute
  BOOST_TEST(integer_of(admin, {"PTTL", s.redis_key("finished")}) > 0);
  // The claim still works for its owner; a repeat of an applied complete
  // keeps the first result.
  BOOST_TEST(complete_one(s, "theirs", theirs.token, "t") == fence_result::applied);
  BOOST_TEST(complete_one(s, "finished", finished.token, "again") == fence_result::applied);
  BOOST_TEST(claim_one(s, "finished").result == "first");
}

BOOST_AUTO_TEST_CASE(odd_keys_and_values_round_trip_byte_exact) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_idempotency_store s{settings_for(server)};
  auto odd = odd_strings();
  odd.push_back(blob_1mib()); // a 1 MiB key, too
  std::vector<std::string_view> keys(odd.begin(), odd.end());
  auto claims = s.claim(keys, 10s);
  BOOST_REQUIRE(claims.size() == odd.size());
  std::vector<done_mark> done;
  for (std::size_t i = 0; i < odd.size(); ++i) {
    BOOST_TEST(claims[i].status == state::fresh);
    // Each key's result is the next odd string: the 1 MiB blob is a value too.
    done.push_back({keys[i], claims[i].token, keys[(i + 1) % keys.size()]});
  }
  for (auto r : s.complete(done, 10s)) {
    BOOST_TEST(r == fence_result::applied);
  }
  auto again = s.claim(keys, 10s);
  for (std::size_t i = 0; i < odd.size(); ++i) {
    BOOST_TEST(again[i].status == state::done);
    BOOST_TEST((again[i].result == odd[(i + 1) % odd.size()]),
               "result " << i << " differs");
  }
  // The keys are stored under exactly the bytes given.
  for (const auto& k : odd) {
    BOOST_TEST(integer_of(admin, {"EXISTS", s.redis_key(k)}) == 1);
  }
  // And beside them only the leases of the two claim calls.
  BOOST_TEST(integer_of(admin, {"DBSIZE"}) == static_cast<long long>(odd.size() + 2));
}

BOOST_AUTO_TEST_CASE(an_injection_attempt_leaves_other_keys_intact) {
  redis_server server;
  redis_connection admin{settings_for(server, "")};
  for (int i = 0; i < 3; ++i) {
    run(admin, {"SET", "bystander-" + std::to_string(i), "v"});
  }
  redis_idempotency_store s{settings_for(server)};
  redis_checkpoint_store ckpt{settings_for(server)};
  const std::string evil = "a\r\nFLUSHALL\r\n";
  const std::string evil_value = "x\r\n*1\r\n$8\r\nFLUSHALL\r\n";
  auto c = claim_one(s, evil);
  BOOST_TEST(c.status == state::fresh);
  const std::string claimed{
      mailroom::reply_text(run(admin, {"GET", s.redis_key(evil)}).get())};
  BOOST_TEST(complete_one(s, evil, c.token, evil_value) == fence_result::applied);
  BOOST_TEST(s.release(evil, c.token) == fence_result::fenced);
  BOOST_TEST(static_cast<bool>(ckpt.write({{evil, evil, evil_value}})));
  BOOST_TEST(
      (read_checkpoint(ckpt, evil, evil) == std::optional<std::string>{evil_value}));
  BOOST_TEST(integer_of(admin, {"DBSIZE"}) == 6); // 3 bystanders + 2 written + a lease
  BOOST_TEST(server.calls_of("flushall") == 0);
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(mailroom::reply_text(
                   run(admin, {"GET", "bystander-" + std::to_string(i)}).get()) == "v");
  }
  auto stored = run(admin, {"GET", s.redis_key(evil)});
  BOOST_TEST(mailroom::reply_text(stored.get()) ==
             "done:" + claimed + ":" + evil_value);
}

BOOST_AUTO_TEST_CASE(every_key_lives_under_the_configured_prefix) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  auto settings = settings_for(server, "tenant-a:");
  redis_idempotency_store ids{settings};
  redis_claim_store claims{settings, "test-source"};
  redis_checkpoint_store ckpt{settings};
  auto c = claim_one(ids, "k1");
  claim_one(ids, "k2");
  complete_one(ids, "k1", c.token);
  auto now = steady::now();
  BOOST_REQUIRE(
      static_cast<bool>(claims.record_dispatch({record("k2", 7, now, now + 1s)})));
  BOOST_REQUIRE(static_cast<bool>(ckpt.write({{"k2", "step", "r"}})));
  auto keys = all_keys(admin);
  // 2 claims and their 2 leases, 1 record, 2 indexes, 1 checkpoint hash
  BOOST_TEST(keys.size() == 8u);
  for (const auto& k : keys) {
    BOOST_TEST(k.rfind("tenant-a:", 0) == 0u, "key outside the prefix: " << k);
  }
  // Another prefix on the same server sees none of it.
  redis_idempotency_store b{settings_for(server, "tenant-b:")};
  BOOST_TEST(claim_one(b, "k1").status == state::fresh);
}

// ---- connection: authentication, database, outage -------------------------------

BOOST_AUTO_TEST_CASE(password_comes_from_the_environment_and_is_never_shown) {
  const std::string password = "s3cr3t pass %s word";
  const std::string wrong = "wr0ng-Pa55-Zq";
  redis_server server{{password, {}}};
  log_capture logs;
  std::vector<std::string> texts;

  {
    scoped_env env{"MAILROOM_TEST_REDIS_PASSWORD", password};
    auto settings = settings_for(server);
    settings.password_env = "MAILROOM_TEST_REDIS_PASSWORD";
    redis_idempotency_store s{settings};
    BOOST_TEST(claim_one(s, "k").status == state::fresh);
  }
  {
    scoped_env env{"MAILROOM_TEST_REDIS_PASSWORD", wrong};
    auto settings = settings_for(server);
    settings.password_env = "MAILROOM_TEST_REDIS_PASSWORD";
    redis_idempotency_store s{settings};
    auto r = s.connection().connect();
    BOOST_TEST(r.failure == failure_class::fatal);
    BOOST_TEST(r.what.find("AUTH refused") != std::string::npos, r.what);
    texts.push_back(r.what);
    BOOST_TEST(claim_one(s, "k").status == state::unavailable);
  }
  {
    auto settings = settings_for(server);
    settings.password_env = "MAILROOM_TEST_REDIS_UNSET_VARIABLE";
    redis_connection c{settings};
    auto r = c.connect();
    BOOST_TEST(r.failure == failure_class::fatal);
    BOOST_TEST(r.what.find("MAILROOM_TEST_REDIS_UNSET_VARIABLE") != std::string::npos,
               r.what);
    texts.push_back(r.what);
  }
  {
    redis_connection c{settings_for(server)};
    auto r = c.connect();
    BOOST_TEST(r.failure == failure_class::fatal);
    BOOST_TEST(r.what.find("requires authentication") != std::string::npos, r.what);
    texts.push_back(r.what);
  }
  texts.push_back(logs.text());
  for (const auto& t : texts) {
    BOOST_TEST(t.find(password) == std::string::npos);
    BOOST_TEST(t.find(wrong) == std::string::npos);
    BOOST_TEST(t.find("s3cr3t") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(an_acl_user_authenticates_with_its_name) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  run(admin,
      {"ACL", "SETUSER", "mailroom-app", "on", ">acl-pass-1", "~*", "&*", "+@all"});
  auto settings = settings_for(server);
  settings.username = "mailroom-app";
  settings.password_env = "MAILROOM_TEST_REDIS_ACL_PASSWORD";
  {
    scoped_env env{settings.password_env, "acl-pass-1"};
    redis_idempotency_store s{settings};
    BOOST_TEST(claim_one(s, "k").status == state::fresh);
    auto who = run(s.connection(), {"ACL", "WHOAMI"});
    BOOST_TEST(mailroom::reply_text(who.get()) == "mailroom-app");
  }
  {
    scoped_env env{settings.password_env, "acl-pass-2"};
    redis_connection c{settings};
    auto r = c.connect();
    BOOST_TEST(r.failure == failure_class::fatal);
    BOOST_TEST(r.what.find("AUTH as user mailroom-app refused") != std::string::npos,
               r.what);
    BOOST_TEST(r.what.find("acl-pass") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(the_configured_database_is_selected) {
  redis_server server;
  auto settings = settings_for(server);
  settings.db = 5;
  redis_idempotency_store s{settings};
  BOOST_TEST(claim_one(s, "k").status == state::fresh);
  redis_connection db0{settings_for(server)};
  redis_connection db5{settings};
  BOOST_TEST(integer_of(db0, {"DBSIZE"}) == 0);
  BOOST_TEST(integer_of(db5, {"DBSIZE"}) == 2); // the key and its lease

  settings.db = 999;
  redis_connection bad{settings};
  auto r = bad.connect();
  BOOST_TEST(r.failure == failure_class::fatal);
  BOOST_TEST(r.what.find("SELECT 999 refused") != std::string::npos, r.what);
}

BOOST_AUTO_TEST_CASE(an_outage_answers_unavailable_quickly_and_heals) {
  redis_server server;
  auto settings = settings_for(server);
  redis_idempotency_store ids{settings};
  redis_claim_store claims{settings, "test-source"};
  redis_checkpoint_store ckpt{settings};
  auto held = claim_one(ids, "held");
  BOOST_REQUIRE(held.status == state::fresh);
  auto now = steady::now();
  BOOST_REQUIRE(
      static_cast<bool>(claims.record_dispatch({record("held", 1, now, now + 1s)})));
  BOOST_REQUIRE(static_cast<bool>(ckpt.write({{"held", "s", "r"}})));
  BOOST_REQUIRE(claims.pending() == 1u);

  server.kill();
  const auto big = blob_1mib();
  // The first calls find their sockets dead (a 1 MiB write to a dead peer
  // must not raise SIGPIPE); later ones fail without touching the network.
  for (int round = 0; round < 3; ++round) {
    auto spent = timed([&] {
      BOOST_TEST(claim_one(ids, "k").status == state::unavailable);
      BOOST_TEST(complete_one(ids, "held", held.token, big) == fence_result::unavailable);
      BOOST_TEST(ids.release("held", held.token) == fence_result::unavailable);
      auto w = claims.record_dispatch({record("k", 2, now, now)});
      BOOST_TEST(w.failure == failure_class::transient);
      std::vector<dispatch_record> out;
      BOOST_TEST(claims.list_stale(now + 1h, 10, out).failure ==
                 failure_class::transient);
      BOOST_TEST(claims.list_reclaimable(now + 1h, 10, out).failure ==
                 failure_class::transient);
      BOOST_TEST(out.empty());
      BOOST_TEST(claims.mark_terminal("held", 1) == fence_result::unavailable);
      BOOST_TEST(claims.pending() == 1u); // the last count seen
      BOOST_TEST(ckpt.write({{"k", "s", big}}).failure == failure_class::transient);
      std::optional<std::string> value{"untouched"};
      BOOST_TEST(ckpt.read("held", "s", value).failure == failure_class::transient);
      BOOST_TEST((value == std::optional<std::string>{"untouched"}));
    });
    BOOST_TEST(spent.count() < 2000,
               "round " << round << " took " << spent.count() << " ms");
  }

  server.restart(); // same port, empty: its script cache is gone too
  auto healed = steady::time_point::max();
  auto deadline = steady::now() + 5s;
  while (steady::now() < deadline) {
    if (claim_one(ids, "after").status == state::fresh) {
      healed = steady::now();
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  BOOST_REQUIRE_MESSAGE(healed != steady::time_point::max(), "no reconnect within 5 s");
  auto c = claim_one(ids, "again");
  BOOST_TEST(c.status == state::fresh);
  BOOST_TEST(complete_one(ids, "again", c.token) == fence_result::applied);
  auto later = steady::now();
  auto deadline2 = steady::now() + 5s;
  while (!claims.record_dispatch({record("k", 3, later, later)}) &&
         steady::now() < deadline2) {
    std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST(claims.pending() == 1u);
  BOOST_TEST(claims.mark_terminal("k", 3) == fence_result::applied);
  while (!ckpt.write({{"k", "s", "v"}}) && steady::now() < deadline2) {
    std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST((read_checkpoint(ckpt, "k", "s") == std::optional<std::string>{"v"}));
}

BOOST_AUTO_TEST_CASE(a_claim_or_complete_whose_reply_was_lost_is_still_applied) {
  redis_server server;
  reply_dropping_proxy proxy{server.port()};
  redis_idempotency_store s{settings_through(proxy, server)};
  redis_idempotency_store direct{settings_for(server)};
  auto warm = claim_one(s, "warm-up"); // connected, and complete's script loaded
  BOOST_REQUIRE(complete_one(s, "warm-up", warm.token) == fence_result::applied);

  // Redis runs the SET, the reply is lost with the connection; the store
  // repeats the call on a new connection and finds its own token there.
  auto sets_before = server.calls_of("set");
  proxy.drop_next_reply();
  auto c = claim_one(s, "k");
  BOOST_TEST(proxy.dropped() == 1);
  BOOST_TEST(server.calls_of("set") - sets_before == 2); // run twice
  BOOST_TEST(c.status == state::fresh);
  BOOST_TEST(claim_one(direct, "k").status == state::in_flight);

  // The same for complete: applied, not fenced, and the result is stored.
  auto scripts_before = server.calls_of("evalsha");
  proxy.drop_next_reply();
  BOOST_TEST(complete_one(s, "k", c.token, "r") == fence_result::applied);
  BOOST_TEST(proxy.dropped() == 2);
  BOOST_TEST(server.calls_of("evalsha") - scripts_before == 2); // run twice
  auto done = claim_one(direct, "k");
  BOOST_TEST(done.status == state::done);
  BOOST_TEST(done.result == "r");
}

BOOST_AUTO_TEST_CASE(a_take_over_whose_reply_was_lost_is_still_applied) {
  // The claim's first round trip finds another store's abandoned claim; the
  // reply of the take-over script is lost and the script repeated: it finds
  // its own new claim there and answers fresh, not in flight.
  redis_server server;
  reply_dropping_proxy proxy{server.port()};
  redis_idempotency_store s{settings_through(proxy, server)};
  redis_idempotency_store other{settings_for(server)};
  BOOST_REQUIRE(claim_one(s, "warm-up").status == state::fresh); // connected
  // Its own earlier claim goes through the take-over script: loaded now.
  BOOST_REQUIRE(claim_one(s, "warm-up").status == state::in_flight);
  BOOST_REQUIRE(claim_one(other, "t", 200ms).status == state::fresh);
  std::this_thread::sleep_for(300ms); // its lease ran out
  auto scripts_before = server.calls_of("evalsha");
  proxy.drop_reply_after(1);
  auto c = claim_one(s, "t");
  BOOST_TEST(proxy.dropped() == 1);
  BOOST_TEST(server.calls_of("evalsha") - scripts_before == 2); // run twice
  BOOST_TEST(c.status == state::fresh);
  BOOST_TEST(claim_one(other, "t").status == state::in_flight);
  BOOST_TEST(complete_one(s, "t", c.token, "r") == fence_result::applied);
}

BOOST_AUTO_TEST_CASE(tokens_differ_between_store_objects_and_fit_a_lua_number) {
  // Two processes (here two store objects) never count the same tokens, and
  // a token stays below 2^53, which a Lua number holds exactly.
  redis_server server;
  redis_idempotency_store a{settings_for(server)};
  redis_idempotency_store b{settings_for(server)};
  std::set<fencing_token> seen;
  for (auto* s : {&a, &b}) {
    for (const auto& c : s->claim({"x-" + std::to_string(seen.size()), "y"}, 10s)) {
      if (c.status == state::fresh) {
        BOOST_TEST(c.token < (fencing_token{1} << 53));
        BOOST_TEST(seen.insert(c.token).second);
      }
    }
  }
  BOOST_TEST(seen.size() == 3u); // x-0, y, x-2 (b finds y in flight)
}

BOOST_AUTO_TEST_CASE(a_batch_mixing_bits_and_results_keeps_each) {
  // Completions with and without a result in one call: the bits of the
  // first kind, the done values of the second, repeats applied.
  redis_server server;
  redis_idempotency_store s{settings_for(server), 60s};
  auto c = s.claim({"bit", "value", "bit-2", "value-2", "value-3"}, 10s);
  std::vector<done_mark> marks{{"bit", c[0].token, {}},
                               {"value", c[1].token, "r1"},
                               {"bit-2", c[2].token, {}},
                               {"value-2", c[3].token, "r2"},
                               {"value-3", c[4].token, "r3"}};
  for (int round = 0; round < 2; ++round) {
    auto r = s.complete(marks, 60s);
    BOOST_REQUIRE(r.size() == marks.size());
    for (auto f : r) {
      BOOST_TEST((f == fence_result::applied), "round " << round);
    }
  }
  auto again = s.claim({"bit", "value", "bit-2", "value-2", "value-3"}, 10s);
  BOOST_TEST(again[0].status == state::done);
  BOOST_TEST(again[1].result == "r1");
  BOOST_TEST(again[2].status == state::done);
  BOOST_TEST(again[3].result == "r2");
  BOOST_TEST(again[4].result == "r3");
}

BOOST_AUTO_TEST_CASE(claims_whose_every_reply_was_lost_are_released_when_redis_answers) {
  // Redis runs the SETs, the reply is lost, and so is the reply of the
  // repeat: the call answers unavailable while the keys stay claimed by
  // tokens nobody holds. Those messages would wait for claim_ttl (a minute)
  // everywhere; the store releases them with its next call instead.
  redis_server server;
  reply_dropping_proxy proxy{server.port()};
  redis_idempotency_store s{settings_through(proxy, server)};
  redis_idempotency_store direct{settings_for(server)};
  BOOST_REQUIRE(claim_one(s, "warm-up").status == state::fresh);

  proxy.drop_next_replies(2);
  std::vector<std::string_view> lost{"lost-1", "lost-2"};
  auto r = s.claim(lost, 60000ms);
  BOOST_TEST(proxy.dropped() == 2);
  BOOST_TEST(r[0].status == state::unavailable);
  BOOST_TEST(r[1].status == state::unavailable);
  BOOST_TEST(s.unresolved_claims() == 2u);
  BOOST_TEST(claim_one(direct, "lost-1").status == state::in_flight); // held for nothing

  // The first call that reaches Redis again (the connection backs off a
  // little first) releases the orphaned claims before its own.
  int tries = 0;
  while (claim_one(s, "next-" + std::to_string(tries)).status != state::fresh && tries < 200) {
    ++tries;
    std::this_thread::sleep_for(10ms);
  }
  BOOST_TEST(s.unresolved_claims() == 0u);
  BOOST_TEST(s.released_unknown_claims() == 2u);
  BOOST_TEST(claim_one(direct, "lost-1").status == state::fresh);
  BOOST_TEST(claim_one(s, "lost-2").status == state::fresh);
}

BOOST_AUTO_TEST_CASE(a_restart_between_calls_costs_no_failure) {
  redis_server server;
  redis_idempotency_store s{settings_for(server)};
  BOOST_REQUIRE(claim_one(s, "a").status == state::fresh);
  server.restart();
  // The idle socket died with the old server: the call reconnects, reloads
  // its script (NOSCRIPT) and succeeds, all within the one call.
  BOOST_TEST(claim_one(s, "a").status == state::fresh);
}

BOOST_AUTO_TEST_CASE(a_hung_server_times_out_within_the_command_timeout) {
  redis_server server;
  auto settings = settings_for(server);
  settings.command_timeout = 300ms;
  redis_idempotency_store s{settings};
  BOOST_REQUIRE(claim_one(s, "a").status == state::fresh);
  server.pause();
  auto spent = timed([&] { BOOST_TEST(claim_one(s, "b").status == state::unavailable); });
  server.resume();
  BOOST_TEST(spent.count() >= 250);
  BOOST_TEST(spent.count() < 1000, "took " << spent.count() << " ms");
  auto deadline = steady::now() + 5s;
  auto status = state::unavailable;
  while (status == state::unavailable && steady::now() < deadline) {
    status = claim_one(s, "c").status;
    std::this_thread::sleep_for(10ms);
  }
  BOOST_TEST(status == state::fresh);
}

// ---- claim store ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(records_round_trip_every_envelope_field) {
  redis_server server;
  redis_claim_store s{settings_for(server), "test-source"};
  auto now = steady::now();
  dispatch_record r = record(std::string{"odd\r\nkey\0 %s", 12}, 0xfedcba9876543210ULL,
                             now - 5s, now - 1s);
  r.message.topic = "orders";
  r.message.ordering_key = "customer 7";
  r.message.payload = blob_1mib();
  r.message.headers = {{"h\r\n1", std::string{"v\0x", 3}}, {"", ""}, {"trace", "%s%n"}};
  r.message.attempt = 3;
  r.message.received = now - 6s;
  r.message.attempt_errors = {"first: timeout", "", "third:\r\n12:x"};
  r.message.handle.seq = 17;
  r.message.handle.generation = 4;
  r.message.handle.assignment = 9;
  r.message.handle.partition = -1;
  r.message.handle.offset = 123456789012345;
  r.message.handle.handle = "1700000000000-0";
  BOOST_REQUIRE(static_cast<bool>(s.record_dispatch({r})));
  std::vector<dispatch_record> out;
  BOOST_REQUIRE(static_cast<bool>(s.list_stale(now, 10, out)));
  BOOST_REQUIRE(out.size() == 1u);
  const auto& m = out[0].message;
  BOOST_TEST(out[0].token == r.token);
  BOOST_TEST(near(out[0].dispatched, r.dispatched));
  BOOST_TEST(near(out[0].claim_expires, r.claim_expires));
  BOOST_TEST(m.key == r.message.key);
  BOOST_TEST(m.id == r.message.id);
  BOOST_TEST(m.topic == r.message.topic);
  BOOST_TEST(m.ordering_key == r.message.ordering_key);
  BOOST_TEST((m.payload == r.message.payload));
  BOOST_TEST((m.headers == r.message.headers));
  BOOST_TEST(m.attempt == r.message.attempt);
  BOOST_TEST(near(m.received, r.message.received));
  BOOST_TEST((m.attempt_errors == r.message.attempt_errors));
  BOOST_TEST(m.handle.seq == r.message.handle.seq);
  BOOST_TEST(m.handle.generation == r.message.handle.generation);
  BOOST_TEST(m.handle.assignment == r.message.handle.assignment);
  BOOST_TEST(m.handle.partition == r.message.handle.partition);
  BOOST_TEST(m.handle.offset == r.message.handle.offset);
  BOOST_TEST(m.handle.handle == r.message.handle.handle);
}

BOOST_AUTO_TEST_CASE(contract_records_are_listed_by_dispatch_time_and_by_expiry) {
  redis_server server;
  redis_claim_store s{settings_for(server), "test-source"};
  contract::records_are_listed_by_dispatch_time_and_by_expiry(s);
}

BOOST_AUTO_TEST_CASE(contract_mark_terminal_is_fenced_by_token) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_claim_store s{settings_for(server), "test-source"};
  contract::mark_terminal_is_fenced_by_token(s);
  BOOST_TEST(integer_of(admin, {"DBSIZE"}) == 0); // records and both indexes gone
}

// The batch ids in the dispatch index, oldest first.
std::vector<std::string> batch_ids(redis_connection& admin) {
  auto reply = run(admin, {"ZRANGE", "mailroom:claims:test-source:by_dispatch", "0", "-1"});
  std::vector<std::string> out;
  for (std::size_t i = 0; i < reply->elements; ++i) {
    out.emplace_back(mailroom::reply_text(reply->element[i]));
  }
  return out;
}

BOOST_AUTO_TEST_CASE(a_batch_is_one_record_and_its_marks_one_script_call_at_the_end) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_claim_store s{settings_for(server), "test-source"};
  auto now = steady::now();
  auto set_before = server.calls_of("set");
  BOOST_REQUIRE(static_cast<bool>(s.record_dispatch(
      {record("a", 1, now, now), record("b", 2, now, now), record("c", 3, now, now)})));
  BOOST_TEST(server.calls_of("set") - set_before == 1);
  BOOST_TEST(integer_of(admin, {"ZCARD", "mailroom:claims:test-source:by_expiry"}) == 1);
  auto evalsha_before = server.calls_of("evalsha");
  BOOST_TEST(s.mark_terminal("a", 1) == fence_result::applied);
  BOOST_TEST(server.calls_of("evalsha") == evalsha_before); // kept in memory
  s.mark_terminal_all({terminal_mark{"b", 2}, terminal_mark{"c", 3}});
  BOOST_TEST(server.calls_of("evalsha") - evalsha_before == 1); // the batch is deleted
  BOOST_TEST(integer_of(admin, {"DBSIZE"}) == 0);
  BOOST_TEST(s.pending() == 0u);
}

BOOST_AUTO_TEST_CASE(a_token_whose_digits_begin_another_fences_nothing) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_claim_store s{settings_for(server), "test-source"};
  auto now = steady::now();
  BOOST_REQUIRE(static_cast<bool>(s.record_dispatch({record("a", 123, now, now)})));
  BOOST_TEST(s.mark_terminal("a", 12) == fence_result::fenced);
  BOOST_TEST(s.mark_terminal("a", 1234) == fence_result::fenced);
  BOOST_TEST(integer_of(admin, {"DBSIZE"}) == 3); // the batch and its two index entries
  BOOST_TEST(s.pending() == 1u);
  BOOST_TEST(s.mark_terminal("a", 123) == fence_result::applied);
  BOOST_TEST(integer_of(admin, {"DBSIZE"}) == 0);
}

BOOST_AUTO_TEST_CASE(what_one_process_settled_is_seen_by_another_after_the_linger) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  auto owner = std::make_unique<redis_claim_store>(settings_for(server), "test-source");
  redis_claim_store other{settings_for(server), "test-source"};
  auto now = steady::now();
  BOOST_REQUIRE(static_cast<bool>(owner->record_dispatch(
      {record("a", 1, now - 10s, now + 60s), record("b", 2, now - 10s, now + 60s),
       record("c", 3, now - 10s, now + 60s), record("d", 4, now - 10s, now + 60s)})));
  BOOST_TEST(owner->mark_terminal("a", 1) == fence_result::applied);
  std::vector<dispatch_record> seen;
  BOOST_REQUIRE(static_cast<bool>(other.list_stale(now, 10, seen)));
  BOOST_TEST(seen.size() == 4u); // within the linger: not written yet
  sleep_for(redis_claim_store::linger + 200ms);
  owner->mark_terminal_all({}); // any call writes what lingered
  seen.clear();
  BOOST_REQUIRE(static_cast<bool>(other.list_stale(now, 10, seen)));
  BOOST_TEST((contract::keys_of(seen) == std::vector<std::string>{"b", "c", "d"}));
  // The other process settles what it listed, fenced by the listed token.
  BOOST_TEST(other.mark_terminal("b", 99) == fence_result::fenced);
  BOOST_TEST(other.mark_terminal("b", 2) == fence_result::applied);
  BOOST_TEST(other.pending() == 2u);
  seen.clear();
  BOOST_REQUIRE(static_cast<bool>(owner->list_stale(now, 10, seen)));
  BOOST_TEST((contract::keys_of(seen) == std::vector<std::string>{"c", "d"}));
  // The owner crashes after settling c: its destructor writes c, not d.
  BOOST_TEST(owner->mark_terminal("c", 3) == fence_result::applied);
  owner.reset();
  seen.clear();
  BOOST_REQUIRE(static_cast<bool>(other.list_stale(now, 10, seen)));
  BOOST_TEST((contract::keys_of(seen) == std::vector<std::string>{"d"}));
  // Writing the key again settles the listed record; the last one deletes
  // the batch.
  BOOST_REQUIRE(static_cast<bool>(other.record_dispatch({record("d", 5, now, now + 60s)})));
  BOOST_TEST(other.pending() == 1u);
  BOOST_TEST(other.mark_terminal("d", 5) == fence_result::applied);
  BOOST_TEST(integer_of(admin, {"DBSIZE"}) == 0);
}

BOOST_AUTO_TEST_CASE(a_large_dispatch_is_split_into_bounded_batches) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_claim_store s{settings_for(server), "test-source"};
  auto now = steady::now();
  std::vector<dispatch_record> many;
  for (int i = 0; i < 600; ++i) {
    many.push_back(record("k-" + std::to_string(i), 1000 + i, now - 5s, now - 1s));
  }
  many[7].message.payload = std::string(5 << 20, 'x'); // over a batch's bytes alone
  BOOST_REQUIRE(static_cast<bool>(s.record_dispatch(many)));
  BOOST_TEST(batch_ids(admin).size() == 5u); // 0-6, 7, 8-263, 264-519, 520-599
  std::vector<dispatch_record> out;
  BOOST_REQUIRE(static_cast<bool>(s.list_reclaimable(now, 1000, out)));
  BOOST_TEST(out.size() == 600u);
  out.clear();
  BOOST_REQUIRE(static_cast<bool>(s.list_stale(now, 10, out)));
  BOOST_TEST(out.size() == 10u);
  std::vector<terminal_mark> marks;
  for (const auto& r : many) {
    marks.push_back({r.message.key, r.token});
  }
  s.mark_terminal_all(marks);
  BOOST_TEST(integer_of(admin, {"DBSIZE"}) == 0);
}

BOOST_AUTO_TEST_CASE(a_key_left_in_two_batches_by_a_crash_is_settled_in_both) {
  // Written again by a process that died within the linger, before Redis
  // learnt the first record was replaced: another process lists both and
  // settles each by its own token.
  redis_server server;
  redis_connection admin{settings_for(server)};
  // Never destroyed (a crash runs no destructor); reachable, so not a leak.
  static redis_claim_store* crashed = nullptr;
  crashed = new redis_claim_store{settings_for(server), "test-source"};
  auto now = steady::now();
  BOOST_REQUIRE(static_cast<bool>(crashed->record_dispatch(
      {record("k", 1, now - 9s, now), record("j", 3, now - 9s, now)})));
  BOOST_REQUIRE(static_cast<bool>(crashed->record_dispatch({record("k", 2, now - 8s, now)})));
  redis_claim_store other{settings_for(server), "test-source"};
  std::vector<dispatch_record> out;
  BOOST_REQUIRE(static_cast<bool>(other.list_stale(now, 10, out)));
  BOOST_REQUIRE(out.size() == 3u);
  BOOST_TEST(other.mark_terminal("k", 1) == fence_result::applied);
  BOOST_TEST(other.mark_terminal("k", 2) == fence_result::applied);
  BOOST_TEST(other.mark_terminal("j", 3) == fence_result::applied);
  BOOST_TEST(integer_of(admin, {"DBSIZE"}) == 0);
}

BOOST_AUTO_TEST_CASE(a_malformed_batch_is_purged_and_the_others_listed) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_claim_store s{settings_for(server), "test-source"};
  auto now = steady::now();
  for (auto [key, token, age] : {std::tuple{"a", 1, 3s}, std::tuple{"b", 2, 2s}, std::tuple{"c", 3, 1s}}) {
    BOOST_REQUIRE(static_cast<bool>(s.record_dispatch({record(key, token, now - age, now)})));
  }
  auto ids = batch_ids(admin);
  BOOST_REQUIRE(ids.size() == 3u);
  run(admin, {"SET", s.batch_key(ids[1]), "5:hello"}); // truncated
  run(admin, {"APPEND", s.batch_key(ids[2]), "0:"});   // bytes left over
  std::vector<dispatch_record> out;
  BOOST_REQUIRE(static_cast<bool>(s.list_stale(now, 10, out)));
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(out[0].message.key == "a");
  // Purged, so they never crowd out what is behind them on the next tick.
  BOOST_TEST(s.purged() == 2u);
  BOOST_TEST(integer_of(admin, {"EXISTS", s.batch_key(ids[1]), s.batch_key(ids[2])}) == 0);
  BOOST_TEST(integer_of(admin, {"ZCARD", "mailroom:claims:test-source:by_dispatch"}) == 1);
  BOOST_TEST(integer_of(admin, {"ZCARD", "mailroom:claims:test-source:by_expiry"}) == 1);
}

BOOST_AUTO_TEST_CASE(records_of_the_earlier_formats_are_purged_not_listed_for_ever) {
  // Records were one hash, then one string, per message, indexed by their
  // key; a deployment upgraded with some left behind must not have its
  // sweeper stuck on them (their messages are the transport's to redeliver).
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_claim_store s{settings_for(server), "test-source"};
  auto now = steady::now();
  mailroom::unix_time clock_map;
  for (int i = 0; i < 5; ++i) {
    auto key = "old-" + std::to_string(i);
    auto record_key = "mailroom:claim:test-source:" + key;
    i % 2 == 0 ? run(admin, {"HSET", record_key, "token", "7", "id", key})
               : run(admin, {"SET", record_key, "1:7"});
    run(admin, {"ZADD", "mailroom:claims:test-source:by_dispatch",
                std::to_string(clock_map.to_unix_ms(now - 10s)), key});
    run(admin, {"ZADD", "mailroom:claims:test-source:by_expiry",
                std::to_string(clock_map.to_unix_ms(now - 10s)), key});
  }
  BOOST_REQUIRE(
      static_cast<bool>(s.record_dispatch({record("new", 9, now - 1s, now - 1s)})));
  std::vector<dispatch_record> out;
  BOOST_REQUIRE(static_cast<bool>(s.list_stale(now, 3, out)));
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(out[0].message.key == "new");
  BOOST_TEST(s.purged() == 5u);
  BOOST_TEST(integer_of(admin, {"EXISTS", "mailroom:claim:test-source:old-0",
                                "mailroom:claim:test-source:old-1"}) == 0);
  out.clear();
  BOOST_REQUIRE(static_cast<bool>(s.list_reclaimable(now, 3, out)));
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(s.pending() == 1u);
}

BOOST_AUTO_TEST_CASE(checkpoints_are_written_in_one_batch_and_read_back) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  redis_checkpoint_store s{settings_for(server), 60s};
  const auto big = blob_1mib();
  auto trips_before = s.connection().round_trips();
  BOOST_REQUIRE(static_cast<bool>(s.write({
      {"m1", "charge", "receipt-1"},
      {"m2", "charge", "receipt-2"},
      {"m1", "ship", big},
      {"m1", "charge", "receipt-1b"}, // a later write of the same step wins
      {std::string{"m\0\r\n3", 5}, "%s step", std::string{"v\0", 2}},
  })));
  BOOST_TEST(s.connection().round_trips() - trips_before <= 2u); // handshake + batch
  BOOST_TEST(
      (read_checkpoint(s, "m1", "charge") == std::optional<std::string>{"receipt-1b"}));
  BOOST_TEST((read_checkpoint(s, "m1", "ship") == std::optional<std::string>{big}));
  BOOST_TEST(
      (read_checkpoint(s, "m2", "charge") == std::optional<std::string>{"receipt-2"}));
  BOOST_TEST((read_checkpoint(s, std::string{"m\0\r\n3", 5}, "%s step") ==
              std::optional<std::string>{std::string{"v\0", 2}}));
  BOOST_TEST(!read_checkpoint(s, "m2", "ship").has_value());
  BOOST_TEST(!read_checkpoint(s, "m9", "charge").has_value());
  std::optional<std::string> value{"stale"};
  BOOST_TEST(static_cast<bool>(s.read("m9", "charge", value)));
  BOOST_TEST(!value.has_value());
  auto pttl = integer_of(admin, {"PTTL", s.redis_key("m1")});
  BOOST_TEST((pttl > 50000 && pttl <= 60000));
  BOOST_TEST(static_cast<bool>(s.write({})));
}

// ---- attempt log ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(attempt_log_contract_redis) {
  namespace log_contract = mailroom::testing::attempt_log_contract;
  redis_server server;
  mailroom::redis_attempt_log log{settings_for(server), "src", 60s};
  log_contract::record_then_load(log);
  log_contract::forget_removes_only_what_it_names(log);
  log_contract::non_utf8_errors_are_kept_readable(log);
  log_contract::deliveries_are_counted(log);
}

BOOST_AUTO_TEST_CASE(attempt_histories_are_scoped_expire_and_take_one_round_trip) {
  redis_server server;
  redis_connection admin{settings_for(server)};
  mailroom::redis_attempt_log a{settings_for(server), "redis-streams:orders:g", 60s};
  mailroom::redis_attempt_log b{settings_for(server), "kafka:orders:g", 60s};
  mailroom::attempt_history h{2, {"e1", "e2"}};
  BOOST_REQUIRE(static_cast<bool>(a.record({{"m-1", &h}, {"m-2", &h}})));
  // Another source's log does not see them.
  std::vector<std::optional<mailroom::attempt_history>> got;
  BOOST_REQUIRE(static_cast<bool>(b.load({"m-1"}, got)));
  BOOST_TEST(!got[0].has_value());
  BOOST_TEST(a.key_of("m-1") == "mailroom:attempts:redis-streams:orders:g:m-1");
  BOOST_TEST(run(admin, {"HGET", a.key_of("m-1"), "e"})->str ==
             std::string{R"(["e1","e2"])"});
  BOOST_TEST(run(admin, {"HGET", a.key_of("m-1"), "d"})->str == std::string{"2"});
  auto pttl = integer_of(admin, {"PTTL", a.key_of("m-1")});
  BOOST_TEST((pttl > 50000 && pttl <= 60000));
  // A batch of 256 loads in one round trip.
  std::vector<std::string> names;
  for (int i = 0; i < 256; ++i) {
    names.push_back("m-" + std::to_string(i));
  }
  std::vector<std::string_view> ids(names.begin(), names.end());
  auto trips = a.connection().round_trips();
  BOOST_REQUIRE(static_cast<bool>(a.load(ids, got)));
  BOOST_TEST(a.connection().round_trips() - trips == 1u);
  BOOST_TEST(got[1].has_value());
  BOOST_TEST(got[2].has_value());
  BOOST_TEST(!got[3].has_value());
  // Counting deliveries of 256 is one round trip too.
  std::vector<mailroom::attempt_history> counted;
  trips = a.connection().round_trips();
  BOOST_REQUIRE(static_cast<bool>(a.deliver(ids, counted)));
  BOOST_TEST(a.connection().round_trips() - trips == 1u);
  BOOST_TEST(counted[1].deliveries == 3u); // recorded 2, this one the third
  BOOST_TEST(counted[3].deliveries == 1u);
  pttl = integer_of(admin, {"PTTL", a.key_of("m-3")});
  BOOST_TEST((pttl > 50000 && pttl <= 60000));
  // A server that is gone fails the calls transiently.
  server.stop();
  BOOST_TEST((a.load({"m-1"}, got).failure == failure_class::transient));
  BOOST_TEST(got.empty());
  BOOST_TEST((a.record({{"m-3", &h}}).failure == failure_class::transient));
}
