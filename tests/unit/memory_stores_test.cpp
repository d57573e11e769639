#define BOOST_TEST_MODULE memory_stores
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"

using namespace std::chrono_literals;
using mailroom::claim_result;
using steady = mailroom::clock;
using mailroom::completion;
using mailroom::dispatch_record;
using mailroom::fence_result;
using mailroom::memory_claim_store;
using mailroom::memory_idempotency_store;

namespace {

using state = claim_result::state;

// A clock the test moves by hand.
struct fake_clock {
  steady::time_point now = steady::time_point{} + 1000h;
  memory_idempotency_store::clock_fn fn() {
    return [this] { return now; };
  }
};

claim_result claim_one(memory_idempotency_store& s, std::string_view key,
                       std::chrono::milliseconds ttl = 1000ms) {
  auto r = s.claim({key}, ttl);
  BOOST_REQUIRE(r.size() == 1u);
  return r[0];
}

fence_result complete_one(memory_idempotency_store& s, std::string_view key,
                          mailroom::fencing_token token, std::string_view result = "ok",
                          std::chrono::milliseconds ttl = 10000ms) {
  auto r = s.complete({completion{key, token, result}}, ttl);
  BOOST_REQUIRE(r.size() == 1u);
  return r[0];
}

dispatch_record record(const std::string& key, mailroom::fencing_token token,
                       steady::time_point dispatched, steady::time_point expires) {
  dispatch_record r;
  r.message.key = key;
  r.message.id = "id-" + key;
  r.token = token;
  r.dispatched = dispatched;
  r.claim_expires = expires;
  return r;
}

std::vector<std::string> keys_of(const std::vector<dispatch_record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) {
    out.push_back(r.message.key);
  }
  return out;
}

} // namespace

BOOST_TEST_DONT_PRINT_LOG_VALUE(claim_result::state)
BOOST_TEST_DONT_PRINT_LOG_VALUE(fence_result)

// ---- idempotency store ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(key_goes_fresh_then_in_flight_then_done) {
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  auto first = claim_one(s, "a");
  BOOST_TEST((first.status == state::fresh));
  BOOST_TEST(first.token != 0u);

  BOOST_TEST((claim_one(s, "a").status == state::in_flight));

  BOOST_TEST((complete_one(s, "a", first.token, "result-a") == fence_result::applied));
  auto again = claim_one(s, "a");
  BOOST_TEST((again.status == state::done));
  BOOST_TEST(again.result == "result-a");
  BOOST_TEST(again.token == 0u);
}

BOOST_AUTO_TEST_CASE(tokens_are_unique_and_never_zero) {
  memory_idempotency_store s;
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) {
    keys.push_back("k" + std::to_string(i));
  }
  std::vector<std::string_view> views(keys.begin(), keys.end());
  auto rs = s.claim(views, 1000ms);
  std::set<mailroom::fencing_token> tokens;
  for (const auto& r : rs) {
    BOOST_TEST_REQUIRE((r.status == state::fresh));
    BOOST_TEST_REQUIRE(r.token != 0u);
    tokens.insert(r.token);
  }
  BOOST_TEST(tokens.size() == 1000u);
}

BOOST_AUTO_TEST_CASE(batch_claim_answers_each_key_in_order) {
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  auto done = claim_one(s, "done");
  complete_one(s, "done", done.token, "R");
  claim_one(s, "busy");

  auto rs = s.claim({"fresh", "done", "busy", "fresh2", "fresh"}, 1000ms);
  BOOST_REQUIRE(rs.size() == 5u);
  BOOST_TEST((rs[0].status == state::fresh));
  BOOST_TEST((rs[1].status == state::done));
  BOOST_TEST(rs[1].result == "R");
  BOOST_TEST((rs[2].status == state::in_flight));
  BOOST_TEST((rs[3].status == state::fresh));
  BOOST_TEST((rs[4].status == state::in_flight)); // repeated in one batch: fresh once
  BOOST_TEST(rs[0].token != rs[3].token);
}

BOOST_AUTO_TEST_CASE(expired_claim_is_taken_over_and_fences_the_old_token) {
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  auto old_claim = claim_one(s, "a", 100ms);
  t.now += 50ms;
  BOOST_TEST((claim_one(s, "a", 100ms).status == state::in_flight));
  t.now += 60ms; // the first claim expired
  auto new_claim = claim_one(s, "a", 100ms);
  BOOST_TEST((new_claim.status == state::fresh));
  BOOST_TEST(new_claim.token != old_claim.token);

  BOOST_TEST((complete_one(s, "a", old_claim.token, "stale") == fence_result::fenced));
  BOOST_TEST((s.release("a", old_claim.token) == fence_result::fenced));
  BOOST_TEST((complete_one(s, "a", new_claim.token, "fresh") == fence_result::applied));
  auto done = claim_one(s, "a");
  BOOST_TEST((done.status == state::done));
  BOOST_TEST(done.result == "fresh");
  // A repeated complete with the winning token changes nothing.
  BOOST_TEST((complete_one(s, "a", new_claim.token, "other") == fence_result::applied));
  BOOST_TEST(claim_one(s, "a").result == "fresh");
}

BOOST_AUTO_TEST_CASE(expired_claim_fences_its_own_token) {
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  auto c = claim_one(s, "a", 100ms);
  t.now += 100ms;
  BOOST_TEST((complete_one(s, "a", c.token) == fence_result::fenced));
  BOOST_TEST((s.release("a", c.token) == fence_result::fenced));
  BOOST_TEST((claim_one(s, "a").status == state::fresh));
}

BOOST_AUTO_TEST_CASE(complete_without_claim_is_fenced) {
  memory_idempotency_store s;
  BOOST_TEST((complete_one(s, "never", 12345) == fence_result::fenced));
  BOOST_TEST((claim_one(s, "never").status == state::fresh));
}

BOOST_AUTO_TEST_CASE(release_deletes_only_with_the_owning_token) {
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  auto c = claim_one(s, "a");
  BOOST_TEST((s.release("a", c.token + 999) == fence_result::fenced));
  BOOST_TEST((claim_one(s, "a").status == state::in_flight));
  BOOST_TEST((s.release("a", c.token) == fence_result::applied));
  BOOST_TEST(s.size() == 0u);
  auto again = claim_one(s, "a");
  BOOST_TEST((again.status == state::fresh));
  BOOST_TEST((s.release("missing", again.token) == fence_result::fenced));

  // A done key is never released.
  complete_one(s, "a", again.token);
  BOOST_TEST((s.release("a", again.token) == fence_result::fenced));
  BOOST_TEST((claim_one(s, "a").status == state::done));
}

BOOST_AUTO_TEST_CASE(expired_entries_are_erased) {
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) {
    keys.push_back("k" + std::to_string(i));
  }
  std::vector<std::string_view> views(keys.begin(), keys.end());
  auto claims = s.claim(views, 60000ms);
  std::vector<completion> done;
  for (std::size_t i = 0; i < 500; ++i) {
    done.push_back({views[i], claims[i].token, "r"});
  }
  s.complete(done, 2000ms);
  BOOST_TEST(s.size() == 1000u);
  t.now += 1999ms;
  BOOST_TEST(s.size() == 1000u);
  t.now += 1ms; // results expire, the rest are live claims
  BOOST_TEST(s.size() == 500u);
  BOOST_TEST((claim_one(s, "k0").status == state::fresh));
  t.now += 60000ms;
  BOOST_TEST(s.size() == 0u);
}

BOOST_AUTO_TEST_CASE(memory_stays_bounded_by_the_result_ttl) {
  // 200k distinct keys, claimed with a long TTL, completed with a 20 ms
  // result TTL while time moves 1 ms a batch: only ~21 batches stay live.
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  std::vector<std::string> keys(256);
  std::vector<std::string_view> views(256);
  std::vector<completion> done(256);
  std::size_t peak = 0;
  for (int batch = 0; batch < 800; ++batch) {
    for (int i = 0; i < 256; ++i) {
      keys[i] = "key-" + std::to_string(batch * 256 + i);
      views[i] = keys[i];
    }
    auto rs = s.claim(views, 60000ms);
    for (int i = 0; i < 256; ++i) {
      BOOST_TEST_REQUIRE((rs[i].status == state::fresh));
      done[i] = completion{views[i], rs[i].token, "ok"};
    }
    s.complete(done, 20ms);
    t.now += 1ms;
    if (batch % 50 == 0) {
      peak = std::max(peak, s.size());
    }
  }
  BOOST_TEST(peak <= 21u * 256u);
  BOOST_TEST(s.size() <= 21u * 256u);
  t.now += 21ms;
  BOOST_TEST(s.size() == 0u);
}

BOOST_AUTO_TEST_CASE(unavailable_switch_answers_unavailable_and_changes_nothing) {
  memory_idempotency_store s;
  auto c = claim_one(s, "a");
  s.set_available(false);
  BOOST_TEST(!s.available());
  auto rs = s.claim({"a", "b"}, 1000ms);
  BOOST_REQUIRE(rs.size() == 2u);
  BOOST_TEST((rs[0].status == state::unavailable));
  BOOST_TEST((rs[1].status == state::unavailable));
  BOOST_TEST((complete_one(s, "a", c.token) == fence_result::unavailable));
  BOOST_TEST((s.release("a", c.token) == fence_result::unavailable));

  s.set_available(true);
  BOOST_TEST((claim_one(s, "a").status == state::in_flight));
  BOOST_TEST((claim_one(s, "b").status == state::fresh));
  BOOST_TEST((complete_one(s, "a", c.token) == fence_result::applied));
}

BOOST_AUTO_TEST_CASE(concurrent_claims_of_the_same_keys_give_one_fresh_each) {
  memory_idempotency_store s;
  constexpr int key_count = 20000;
  constexpr int threads = 4;
  std::vector<std::string> keys;
  for (int i = 0; i < key_count; ++i) {
    keys.push_back("k" + std::to_string(i));
  }
  std::vector<std::atomic<int>> fresh(key_count);
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      // Each thread walks the keys from a different start, in batches of 100.
      for (int b = 0; b < key_count / 100; ++b) {
        int first = ((b + w * 37) % (key_count / 100)) * 100;
        std::vector<std::string_view> batch;
        for (int i = first; i < first + 100; ++i) {
          batch.push_back(keys[i]);
        }
        auto rs = s.claim(batch, 60000ms);
        std::vector<completion> done;
        for (int i = 0; i < 100; ++i) {
          if (rs[i].status == state::fresh) {
            fresh[first + i].fetch_add(1);
            if (i % 2 == 0) {
              done.push_back({batch[i], rs[i].token, "ok"});
            }
          }
        }
        s.complete(done, 60000ms);
      }
    });
  }
  for (auto& th : workers) {
    th.join();
  }
  int wrong = 0;
  for (auto& f : fresh) {
    wrong += f.load() == 1 ? 0 : 1;
  }
  BOOST_TEST(wrong == 0);
  BOOST_TEST(s.size() == static_cast<std::size_t>(key_count));
}

// ---- claim store ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(claim_store_lists_stale_records_oldest_first) {
  memory_claim_store s;
  auto t0 = steady::now();
  BOOST_REQUIRE(s.record_dispatch(
      {record("c", 3, t0 - 30s, t0 + 60s), record("a", 1, t0 - 50s, t0 + 60s),
       record("b", 2, t0 - 40s, t0 + 60s), record("new", 4, t0, t0 + 60s)}));
  BOOST_TEST(s.pending() == 4u);

  std::vector<dispatch_record> out;
  BOOST_REQUIRE(s.list_stale(t0 - 20s, 10, out));
  BOOST_TEST(keys_of(out) == (std::vector<std::string>{"a", "b", "c"}));
  BOOST_TEST(out[0].token == 1u);
  BOOST_TEST(out[0].message.id == "id-a");

  std::vector<dispatch_record> limited;
  BOOST_REQUIRE(s.list_stale(t0 - 20s, 2, limited));
  BOOST_TEST(keys_of(limited) == (std::vector<std::string>{"a", "b"}));

  std::vector<dispatch_record> none;
  BOOST_REQUIRE(s.list_stale(t0 - 60s, 10, none));
  BOOST_TEST(none.empty());
  BOOST_TEST(s.pending() == 4u); // listing removes nothing
}

BOOST_AUTO_TEST_CASE(claim_store_lists_reclaimable_records_by_expiry) {
  memory_claim_store s;
  auto t0 = steady::now();
  s.record_dispatch({record("late", 1, t0, t0 + 10s), record("x", 2, t0, t0 - 5s),
                     record("y", 3, t0, t0 - 9s), record("edge", 4, t0, t0)});
  std::vector<dispatch_record> out;
  BOOST_REQUIRE(s.list_reclaimable(t0, 10, out));
  BOOST_TEST(keys_of(out) == (std::vector<std::string>{"y", "x", "edge"}));
  std::vector<dispatch_record> one;
  BOOST_REQUIRE(s.list_reclaimable(t0, 1, one));
  BOOST_TEST(keys_of(one) == (std::vector<std::string>{"y"}));
}

BOOST_AUTO_TEST_CASE(claim_store_mark_terminal_is_fenced_by_token) {
  memory_claim_store s;
  auto t0 = steady::now();
  s.record_dispatch({record("a", 1, t0, t0 + 10s)});
  // A re-dispatch under a newer claim replaces the record.
  s.record_dispatch({record("a", 2, t0 + 1s, t0 + 20s)});
  BOOST_TEST(s.pending() == 1u);
  BOOST_TEST((s.mark_terminal("a", 1) == fence_result::fenced));
  BOOST_TEST(s.pending() == 1u);
  BOOST_TEST((s.mark_terminal("a", 2) == fence_result::applied));
  BOOST_TEST(s.pending() == 0u);
  BOOST_TEST((s.mark_terminal("a", 2) == fence_result::fenced));
  std::vector<dispatch_record> out;
  s.list_stale(t0 + 1h, 10, out);
  BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(claim_store_unavailable_switch_fails_every_call) {
  memory_claim_store s;
  auto t0 = steady::now();
  s.record_dispatch({record("a", 1, t0 - 1h, t0 - 1h)});
  s.set_available(false);
  BOOST_TEST(!s.record_dispatch({record("b", 2, t0, t0)}));
  BOOST_TEST((s.record_dispatch({}).failure == mailroom::failure_class::transient));
  std::vector<dispatch_record> out;
  BOOST_TEST(!s.list_stale(t0, 10, out));
  BOOST_TEST(!s.list_reclaimable(t0, 10, out));
  BOOST_TEST(out.empty());
  BOOST_TEST((s.mark_terminal("a", 1) == fence_result::unavailable));

  s.set_available(true);
  BOOST_TEST(s.pending() == 1u);
  BOOST_REQUIRE(s.list_stale(t0, 10, out));
  BOOST_TEST(keys_of(out) == (std::vector<std::string>{"a"}));
  BOOST_TEST((s.mark_terminal("a", 1) == fence_result::applied));
}

BOOST_AUTO_TEST_CASE(claim_store_is_thread_safe) {
  memory_claim_store s;
  auto t0 = steady::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < 2000; ++i) {
        std::string key = std::to_string(w) + "-" + std::to_string(i);
        s.record_dispatch({record(key, 7, t0, t0)});
        std::vector<dispatch_record> out;
        s.list_reclaimable(t0, 5, out);
        if (i % 2 == 0) {
          s.mark_terminal(key, 7);
        }
      }
    });
  }
  for (auto& th : workers) {
    th.join();
  }
  BOOST_TEST(s.pending() == 4000u);
}
