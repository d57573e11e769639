#define BOOST_TEST_MODULE redis_durable_steps
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "stores/redis/redis_checkpoint_store.hpp"
#include "tests/support/checkpoint_contract.hpp"
#include "tests/support/durable_scenarios.hpp"
#include "tests/support/redis_server.hpp"

// Durable steps on the Redis checkpoint store: the scenarios and the store
// contract the memory store passes, against a real redis-server.

using namespace mailroom;
using namespace mailroom::testing;

namespace {

redis_settings settings_for(const redis_server& server) {
  redis_settings s;
  s.port = server.port();
  s.connect_timeout = std::chrono::milliseconds{500};
  s.command_timeout = std::chrono::milliseconds{1000};
  s.reconnect.base = std::chrono::milliseconds{20};
  s.reconnect.cap = std::chrono::milliseconds{200};
  return s;
}

// One server for the whole file; every scenario uses keys of its own.
redis_server& shared_redis() {
  static redis_server server;
  return server;
}

std::shared_ptr<checkpoint_store> redis_store() {
  static int n = 0;
  auto s = settings_for(shared_redis());
  s.key_prefix = "steps" + std::to_string(++n) + ":"; // a fresh keyspace per scenario
  return std::make_shared<redis_checkpoint_store>(s);
}

} // namespace

MAILROOM_DURABLE_SCENARIO_CASES(redis_store)

BOOST_AUTO_TEST_CASE(redis_store_passes_the_checkpoint_contract) {
  auto store = redis_store();
  checkpoint_contract(*store);
}

BOOST_AUTO_TEST_CASE(the_history_of_a_message_is_one_hash_read_in_one_call) {
  auto s = settings_for(shared_redis());
  s.key_prefix = "onecall:";
  redis_checkpoint_store store{s};
  BOOST_REQUIRE(static_cast<bool>(
      store.write({{"k", "0", "a"}, {"k", "1", "b"}, {"k", "2/0", "c"}})));
  auto before = shared_redis().calls_of("hscan");
  auto got = loaded(store, "k");
  BOOST_TEST(got.size() == 3u);
  BOOST_TEST(shared_redis().calls_of("hscan") - before == 1);
}

BOOST_AUTO_TEST_CASE(redis_down_is_transient_and_a_wrong_type_is_fatal) {
  redis_server own;
  auto s = settings_for(own);
  redis_checkpoint_store store{s};
  BOOST_REQUIRE(static_cast<bool>(store.write({{"k", "0", "a"}})));
  // A key of another type where the hash should be: fatal, not retried.
  redis_connection admin{s};
  (void)admin.command({"SET", store.redis_key("str"), "x"});
  std::vector<checkpoint> out;
  BOOST_TEST((store.load("str", out).failure == failure_class::fatal));
  own.stop();
  BOOST_TEST((store.load("k", out).failure == failure_class::transient));
  BOOST_TEST((store.write({{"k", "1", "b"}}).failure == failure_class::transient));
  own.restart();
  bool back = eventually([&] { return static_cast<bool>(store.load("k", out)); }, 5000ms);
  BOOST_REQUIRE(back);
  BOOST_TEST(out.empty()); // the server came back empty: nothing, not an error
}
