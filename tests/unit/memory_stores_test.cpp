#define BOOST_TEST_MODULE memory_stores
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"
#include "stores/memory/memory_attempt_log.hpp"
#include "tests/support/attempt_log_contract.hpp"
#include "tests/support/store_contract.hpp"

using namespace std::chrono_literals;
using mailroom::claim_result;
using steady = mailroom::clock;
using mailroom::done_mark;
using mailroom::dispatch_record;
using mailroom::fence_result;
using mailroom::memory_claim_store;
using mailroom::memory_idempotency_store;

namespace {

namespace contract = mailroom::testing::store_contract;
using state = claim_result::state;

// A clock the test moves by hand.
struct fake_clock {
  steady::time_point now = steady::time_point{} + 1000h;
  memory_idempotency_store::clock_fn fn() {
    return [this] { return now; };
  }
};

// The tests here keep claims for 1 s unless they say otherwise.
claim_result claim_one(memory_idempotency_store& s, std::string_view key,
                       std::chrono::milliseconds ttl = 1000ms) {
  return contract::claim_one(s, key, ttl);
}

fence_result complete_one(memory_idempotency_store& s, std::string_view key,
                          mailroom::fencing_token token, std::string_view result = "ok",
                          std::chrono::milliseconds ttl = 10000ms) {
  return contract::complete_one(s, key, token, result, ttl);
}

using contract::keys_of;
using contract::record;

} // namespace

// ---- idempotency store: the contract every store meets ------------------------

// A store on a clock the test moves, for the contract tests.
struct on_a_memory_store {
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  contract::timing time{[this](std::chrono::milliseconds d) { t.now += d; }};
};

MAILROOM_IDEMPOTENCY_STORE_CONTRACT(on_a_memory_store)

// ---- idempotency store: the memory store's own ----------------------------------

BOOST_AUTO_TEST_CASE(a_released_claim_leaves_no_entry_behind) {
  memory_idempotency_store s;
  auto c = claim_one(s, "a");
  BOOST_TEST(s.size() == 1u);
  BOOST_TEST((s.release("a", c.token) == fence_result::applied));
  BOOST_TEST(s.size() == 0u);
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
  std::vector<done_mark> done;
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
  std::vector<done_mark> done(256);
  std::size_t peak = 0;
  for (int batch = 0; batch < 800; ++batch) {
    for (int i = 0; i < 256; ++i) {
      keys[i] = "key-" + std::to_string(batch * 256 + i);
      views[i] = keys[i];
    }
    auto rs = s.claim(views, 60000ms);
    for (int i = 0; i < 256; ++i) {
      BOOST_TEST_REQUIRE((rs[i].status == state::fresh));
      done[i] = done_mark{views[i], rs[i].token, "ok"};
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
        std::vector<done_mark> done;
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

BOOST_AUTO_TEST_CASE(growth_keeps_every_entry_findable) {
  // Enough keys to rehash every shard's table many times, in one shard and in
  // several; each key must keep its own token and result.
  for (std::size_t shards : {std::size_t{1}, std::size_t{16}}) {
    fake_clock t;
    memory_idempotency_store s{t.fn(), shards};
    constexpr int key_count = 100000;
    std::vector<std::string> keys;
    for (int i = 0; i < key_count; ++i) {
      keys.push_back("grow-" + std::to_string(i));
    }
    std::vector<mailroom::fencing_token> tokens;
    for (int first = 0; first < key_count; first += 1000) {
      std::vector<std::string_view> batch(keys.begin() + first,
                                          keys.begin() + first + 1000);
      for (const auto& r : s.claim(batch, 60000ms)) {
        BOOST_TEST_REQUIRE((r.status == state::fresh));
        tokens.push_back(r.token);
      }
    }
    BOOST_TEST(s.size() == static_cast<std::size_t>(key_count));
    std::vector<std::string_view> all(keys.begin(), keys.end());
    int wrong = 0;
    for (const auto& r : s.claim(all, 60000ms)) {
      wrong += r.status == state::in_flight ? 0 : 1;
    }
    BOOST_TEST(wrong == 0);
    std::vector<done_mark> done;
    for (int i = 0; i < key_count; i += 2) {
      done.push_back({keys[i], tokens[i], keys[i]});
    }
    for (auto r : s.complete(done, 60000ms)) {
      wrong += r == fence_result::applied ? 0 : 1;
    }
    BOOST_TEST(wrong == 0);
    auto again = s.claim(all, 60000ms);
    for (int i = 0; i < key_count; ++i) {
      if (i % 2 == 0) {
        wrong += again[i].status == state::done && again[i].result == keys[i] ? 0 : 1;
      } else {
        wrong += again[i].status == state::in_flight ? 0 : 1;
      }
    }
    BOOST_TEST(wrong == 0);
    BOOST_TEST(s.size() == static_cast<std::size_t>(key_count));
  }
}

BOOST_AUTO_TEST_CASE(deletion_after_many_expiries_keeps_the_rest_findable) {
  // Waves of keys with different TTLs expire and are re-claimed while other
  // keys stay: every erase (and the slot shifts it makes) must leave the live
  // keys findable, and a key that expired is fresh with a new token.
  fake_clock t;
  memory_idempotency_store s{t.fn(), 1};
  constexpr int key_count = 20000;
  std::vector<std::string> keys;
  for (int i = 0; i < key_count; ++i) {
    keys.push_back("wave-" + std::to_string(i));
  }
  auto ttl_of = [](int i) { return std::chrono::milliseconds{10 + 10 * (i % 5)}; };
  std::vector<mailroom::fencing_token> tokens(key_count);
  for (int i = 0; i < key_count; ++i) {
    auto r = claim_one(s, keys[i], ttl_of(i));
    BOOST_TEST_REQUIRE((r.status == state::fresh));
    tokens[i] = r.token;
  }
  int wrong = 0;
  for (int step = 1; step <= 5; ++step) {
    t.now += 10ms; // keys with i % 5 == step - 1 expire now
    BOOST_TEST(s.size() == static_cast<std::size_t>(key_count / 5 * (5 - step)));
    for (int i = 0; i < key_count; ++i) {
      const bool expired = i % 5 < step;
      auto r = claim_one(s, keys[i], 1000000ms);
      if (expired) {
        // Fresh again, with a token never seen, and the old one fenced.
        wrong += r.status == state::fresh && r.token > tokens[i] ? 0 : 1;
        wrong += complete_one(s, keys[i], tokens[i]) == fence_result::fenced ? 0 : 1;
        wrong += s.release(keys[i], r.token) == fence_result::applied ? 0 : 1;
      } else {
        wrong += r.status == state::in_flight ? 0 : 1;
      }
    }
  }
  BOOST_TEST(wrong == 0);
  BOOST_TEST(s.size() == 0u);
}

BOOST_AUTO_TEST_CASE(expired_entries_not_yet_erased_are_claimed_afresh) {
  // Calls erase only a bounded number of expired entries, so most of a big
  // expired batch is still stored when its keys come back.
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  constexpr int key_count = 10000;
  std::vector<std::string> keys;
  for (int i = 0; i < key_count; ++i) {
    keys.push_back("late-" + std::to_string(i));
  }
  std::vector<std::string_view> views(keys.begin(), keys.end());
  auto first = s.claim(views, 100ms);
  std::vector<done_mark> done;
  for (int i = 0; i < key_count; i += 2) {
    done.push_back({views[i], first[i].token, "old"});
  }
  s.complete(done, 100ms);
  t.now += 100ms;
  int wrong = 0;
  for (int i = key_count - 1; i >= 0; --i) {
    auto r = claim_one(s, keys[i], 1000ms);
    wrong += r.status == state::fresh && r.token != first[i].token ? 0 : 1;
    wrong += complete_one(s, keys[i], first[i].token) == fence_result::fenced ? 0 : 1;
    wrong += complete_one(s, keys[i], r.token, "new") == fence_result::applied ? 0 : 1;
    auto again = claim_one(s, keys[i]);
    wrong += again.status == state::done && again.result == "new" ? 0 : 1;
  }
  BOOST_TEST(wrong == 0);
  BOOST_TEST(s.size() == static_cast<std::size_t>(key_count));
  t.now += 10000ms;
  BOOST_TEST(s.size() == 0u);
}

BOOST_AUTO_TEST_CASE(long_keys_are_stored_whole) {
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  const std::string kib(1024, 'x');
  std::string kib_other = kib;
  kib_other.back() = 'y'; // differs in the last byte only
  const std::string medium = "order-3f2b9c1e-5d7a-4e1b-9c2d-000000000001";
  BOOST_TEST_REQUIRE(medium.size() > 15u);

  auto a = claim_one(s, kib, 100ms);
  auto b = claim_one(s, kib_other, 100ms);
  auto c = claim_one(s, medium, 100ms);
  BOOST_TEST((a.status == state::fresh));
  BOOST_TEST((b.status == state::fresh));
  BOOST_TEST((c.status == state::fresh));
  BOOST_TEST((claim_one(s, kib).status == state::in_flight));
  BOOST_TEST((claim_one(s, kib.substr(0, 1023)).status == state::fresh));

  const std::string big_result(4096, 'r');
  BOOST_TEST((complete_one(s, kib, a.token, big_result, 100ms) == fence_result::applied));
  auto done = claim_one(s, kib);
  BOOST_TEST((done.status == state::done));
  BOOST_TEST(done.result == big_result);
  BOOST_TEST((s.release(kib_other, b.token) == fence_result::applied));
  BOOST_TEST((claim_one(s, kib_other).status == state::fresh));

  t.now += 100ms; // the long keys' claims and result expire
  auto c2 = claim_one(s, medium);
  BOOST_TEST((c2.status == state::fresh));
  BOOST_TEST(c2.token != c.token);
  auto a2 = claim_one(s, kib);
  BOOST_TEST((a2.status == state::fresh));
  BOOST_TEST(a2.result.empty());
  // A short key reusing the entry of a long one.
  t.now += 10000ms;
  BOOST_TEST(s.size() == 0u);
  BOOST_TEST((claim_one(s, "short").status == state::fresh));
  BOOST_TEST((claim_one(s, kib).status == state::fresh));
  BOOST_TEST(s.size() == 2u);
}

BOOST_AUTO_TEST_CASE(keys_with_nul_bytes_are_distinct) {
  fake_clock t;
  memory_idempotency_store s{t.fn()};
  using namespace std::string_view_literals;
  const std::vector<std::string_view> keys{"a"sv,  "a\0"sv, "a\0b"sv, "a\0c"sv,
                                           "\0"sv, ""sv,    "\0\0"sv, "a\0b\0"sv};
  auto rs = s.claim(keys, 1000ms);
  std::set<mailroom::fencing_token> tokens;
  for (const auto& r : rs) {
    BOOST_TEST_REQUIRE((r.status == state::fresh));
    tokens.insert(r.token);
  }
  BOOST_TEST(tokens.size() == keys.size());
  BOOST_TEST((complete_one(s, "a\0b"sv, rs[2].token, "r\0b"sv) == fence_result::applied));
  BOOST_TEST((complete_one(s, "a\0c"sv, rs[2].token) == fence_result::fenced));
  auto done = claim_one(s, "a\0b"sv);
  BOOST_TEST((done.status == state::done));
  BOOST_TEST(done.result == std::string("r\0b", 3));
  BOOST_TEST((claim_one(s, "a\0c"sv).status == state::in_flight));
  BOOST_TEST((s.release("a"sv, rs[1].token) == fence_result::fenced));
  BOOST_TEST((s.release("a\0"sv, rs[1].token) == fence_result::applied));
  BOOST_TEST((claim_one(s, "a").status == state::in_flight));
  BOOST_TEST(s.size() == keys.size() - 1);
}

BOOST_AUTO_TEST_CASE(compaction_keeps_scattered_claims_settleable) {
  // Keys claimed with a long TTL and completed with a short one, in a scattered
  // order, leave tombstones among live claims; compacting those must keep every
  // remaining claim completable and expiring on time.
  fake_clock t;
  memory_idempotency_store s{t.fn(), 2};
  constexpr int key_count = 50000;
  std::vector<std::string> keys;
  for (int i = 0; i < key_count; ++i) {
    keys.push_back("scatter-" + std::to_string(i));
  }
  std::vector<std::string_view> views(keys.begin(), keys.end());
  auto claims = s.claim(views, 60000ms);
  int wrong = 0;
  // Complete every key not divisible by 7, hopping through the keys so done and
  // live claims interleave; release every 11th of the rest.
  for (int step = 0; step < key_count; ++step) {
    const int i = static_cast<int>((static_cast<long long>(step) * 7919) % key_count);
    if (i % 7 != 0) {
      wrong +=
          complete_one(s, keys[i], claims[i].token, "ok", 1000ms) == fence_result::applied
              ? 0
              : 1;
    } else if (i % 11 == 0) {
      wrong += s.release(keys[i], claims[i].token) == fence_result::applied ? 0 : 1;
    }
  }
  BOOST_TEST(wrong == 0);
  t.now += 1000ms; // results expire; the claims of multiples of 7 stay
  std::size_t in_flight = 0;
  for (int i = 0; i < key_count; i += 7) {
    in_flight += i % 11 == 0 ? 0 : 1;
  }
  BOOST_TEST(s.size() == in_flight);
  // Settle half of the claims left; the other half must still expire on time.
  std::size_t still_in_flight = 0;
  for (int i = 0; i < key_count; i += 7) {
    if (i % 11 == 0) {
      continue;
    }
    wrong += claim_one(s, keys[i]).status == state::in_flight ? 0 : 1;
    if (i % 2 == 0) {
      wrong += complete_one(s, keys[i], claims[i].token, "late", 500ms) ==
                       fence_result::applied
                   ? 0
                   : 1;
    } else {
      ++still_in_flight;
    }
  }
  BOOST_TEST(wrong == 0);
  t.now += 500ms;
  BOOST_TEST(s.size() == still_in_flight);
  t.now += 58500ms; // the claims expire
  BOOST_TEST(s.size() == 0u);
  // Claim items tombstoned long ago must not touch the entries reused since.
  std::vector<std::string_view> reuse(views.begin(), views.begin() + 1000);
  for (const auto& r : s.claim(reuse, 1000000ms)) {
    wrong += r.status == state::fresh ? 0 : 1;
  }
  t.now += 60000ms;
  BOOST_TEST(s.size() == 1000u);
  for (const auto& r : s.claim(reuse, 1000000ms)) {
    wrong += r.status == state::in_flight ? 0 : 1;
  }
  BOOST_TEST(wrong == 0);
}

BOOST_AUTO_TEST_CASE(many_ttls_expire_exactly) {
  // One FIFO per TTL, reused once empty: each key expires at its own TTL.
  fake_clock t;
  memory_idempotency_store s{t.fn(), 1};
  for (int round = 0; round < 3; ++round) {
    const auto offset = std::chrono::milliseconds{1000 * round};
    for (int ms = 1; ms <= 100; ++ms) {
      claim_one(s, "ttl-" + std::to_string(round) + "-" + std::to_string(ms),
                offset + std::chrono::milliseconds{ms});
    }
    t.now += offset;
    BOOST_TEST_REQUIRE(s.size() == 100u);
    for (int ms = 1; ms <= 100; ++ms) {
      t.now += 1ms;
      BOOST_TEST_REQUIRE(s.size() == static_cast<std::size_t>(100 - ms));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_clock_step_back_counts_as_no_time_passing) {
  // Threads may read the clock in one order and lock in another; the store
  // keeps time per shard monotonic so expiry order holds.
  fake_clock t;
  memory_idempotency_store s{t.fn(), 1};
  const auto start = t.now;
  claim_one(s, "a", 100ms);
  t.now = start - 50ms;
  claim_one(s, "b", 100ms); // taken as claimed at `start`
  t.now = start + 60ms;
  BOOST_TEST((claim_one(s, "b").status == state::in_flight));
  BOOST_TEST(s.size() == 2u);
  t.now = start + 100ms;
  BOOST_TEST(s.size() == 0u);
}

BOOST_AUTO_TEST_CASE(random_operations_match_a_model) {
  // Random claims, completes and releases over a small key space with time
  // moving, checked answer by answer against a plain map: covers slot shifts
  // after erases, entry reuse, re-claims of expired keys and compaction.
  struct model_entry {
    mailroom::fencing_token token = 0;
    steady::time_point expires{};
    bool done = false;
    std::string result;
  };
  for (std::size_t shards : {std::size_t{1}, std::size_t{3}}) {
    fake_clock t;
    memory_idempotency_store s{t.fn(), shards};
    std::map<std::string, model_entry> model;
    std::mt19937 rng{7};
    auto key = [&] {
      const unsigned k = rng() % 3000;
      return k % 5 == 0 ? "long-key-padding-" + std::to_string(k)
                        : "k" + std::to_string(k);
    };
    auto live = [&](const std::string& k) {
      auto it = model.find(k);
      return it != model.end() && it->second.expires > t.now ? &it->second : nullptr;
    };
    int wrong = 0;
    for (int op = 0; op < 200000 && wrong == 0; ++op) {
      const unsigned what = rng() % 100;
      if (what < 45) {
        const std::string k = key();
        const auto ttl = std::chrono::milliseconds{1 + rng() % 50};
        auto r = claim_one(s, k, ttl);
        if (auto* m = live(k)) {
          wrong += r.status == (m->done ? state::done : state::in_flight) ? 0 : 1;
          wrong += m->done && r.result != m->result ? 1 : 0;
        } else {
          wrong += r.status == state::fresh ? 0 : 1;
          model[k] = model_entry{r.token, t.now + ttl, false, {}};
        }
      } else if (what < 80) {
        const std::string k = key();
        auto it = model.find(k);
        const mailroom::fencing_token token = it == model.end() ? 1 : it->second.token;
        const std::string result = rng() % 2 == 0 ? "" : "result-" + k;
        const auto ttl = std::chrono::milliseconds{1 + rng() % 80};
        auto r = complete_one(s, k, token, result, ttl);
        auto* m = live(k);
        const bool applies = m != nullptr && m->token == token;
        wrong += r == (applies ? fence_result::applied : fence_result::fenced) ? 0 : 1;
        if (applies && !m->done) {
          m->done = true;
          m->result = result;
          m->expires = t.now + ttl;
        }
      } else if (what < 90) {
        const std::string k = key();
        auto it = model.find(k);
        const mailroom::fencing_token token = it == model.end() ? 1 : it->second.token;
        auto r = s.release(k, token);
        auto* m = live(k);
        const bool applies = m != nullptr && !m->done;
        wrong += r == (applies ? fence_result::applied : fence_result::fenced) ? 0 : 1;
        if (applies) {
          model.erase(k);
        }
      } else if (what < 99) {
        t.now += std::chrono::milliseconds{rng() % 3};
      } else {
        std::size_t n = 0;
        for (const auto& [k, m] : model) {
          n += m.expires > t.now ? 1 : 0;
        }
        wrong += s.size() == n ? 0 : 1;
      }
    }
    BOOST_TEST(wrong == 0);
  }
}

BOOST_AUTO_TEST_CASE(concurrent_churn_with_expiry_leaves_nothing_behind) {
  // Threads claim, complete and release overlapping keys with TTLs of a few
  // milliseconds on the real clock, so erases, entry reuse and compaction run
  // under contention; once every TTL has passed the store must be empty.
  memory_idempotency_store s;
  constexpr int threads = 4;
  std::atomic<int> wrong{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937 rng(static_cast<unsigned>(w));
      std::vector<std::string> keys(64);
      std::vector<std::string_view> views(64);
      for (int round = 0; round < 300; ++round) {
        for (std::size_t i = 0; i < keys.size(); ++i) {
          keys[i] = "churn-" + std::to_string(rng() % 5000);
          views[i] = keys[i];
        }
        auto rs = s.claim(views, std::chrono::milliseconds{1 + rng() % 3});
        std::vector<done_mark> done;
        for (std::size_t i = 0; i < keys.size(); ++i) {
          if (rs[i].status != state::fresh) {
            continue;
          }
          if (i % 3 == 0) {
            const auto r = s.release(keys[i], rs[i].token);
            wrong += r == fence_result::unavailable ? 1 : 0;
          } else {
            done.push_back({views[i], rs[i].token, i % 2 == 0 ? "" : "r"});
          }
        }
        for (auto r : s.complete(done, std::chrono::milliseconds{1 + rng() % 3})) {
          wrong += r == fence_result::unavailable ? 1 : 0;
        }
      }
    });
  }
  for (auto& th : workers) {
    th.join();
  }
  BOOST_TEST(wrong.load() == 0);
  std::this_thread::sleep_for(10ms);
  BOOST_TEST(s.size() == 0u);
}

// ---- claim store ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(contract_records_are_listed_by_dispatch_time_and_by_expiry) {
  memory_claim_store s;
  contract::records_are_listed_by_dispatch_time_and_by_expiry(s);
}

BOOST_AUTO_TEST_CASE(contract_mark_terminal_is_fenced_by_token) {
  memory_claim_store s;
  contract::mark_terminal_is_fenced_by_token(s);
}

BOOST_AUTO_TEST_CASE(a_claim_expiring_exactly_now_is_reclaimable) {
  memory_claim_store s;
  auto t0 = steady::now();
  BOOST_REQUIRE(bool(s.record_dispatch({record("late", 1, t0, t0 + 1ns), record("edge", 4, t0, t0)})));
  std::vector<dispatch_record> out;
  BOOST_REQUIRE(s.list_reclaimable(t0, 10, out));
  BOOST_TEST(keys_of(out) == (std::vector<std::string>{"edge"}));
}

BOOST_AUTO_TEST_CASE(claim_store_unavailable_switch_fails_every_call) {
  memory_claim_store s;
  auto t0 = steady::now();
  BOOST_REQUIRE(bool(s.record_dispatch({record("a", 1, t0 - 1h, t0 - 1h)})));
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
  // Counted, not asserted, in the threads: Boost.Test's checks are not
  // thread-safe (under load they corrupted its own state).
  std::atomic<int> failed_calls{0};
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < 2000; ++i) {
        std::string key = std::to_string(w) + "-" + std::to_string(i);
        failed_calls += bool(s.record_dispatch({record(key, 7, t0, t0)})) ? 0 : 1;
        std::vector<dispatch_record> out;
        failed_calls += bool(s.list_reclaimable(t0, 5, out)) ? 0 : 1;
        if (i % 2 == 0) {
          s.mark_terminal(key, 7);
        }
      }
    });
  }
  for (auto& th : workers) {
    th.join();
  }
  BOOST_TEST(failed_calls.load() == 0);
  BOOST_TEST(s.pending() == 4000u);
}

// ---- attempt log ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(attempt_log_contract_memory) {
  namespace log_contract = mailroom::testing::attempt_log_contract;
  mailroom::memory_attempt_log log;
  log_contract::record_then_load(log);
  log_contract::forget_removes_only_what_it_names(log);
  log_contract::non_utf8_errors_are_kept_readable(log);
  log_contract::deliveries_are_counted(log);
}

BOOST_AUTO_TEST_CASE(memory_attempt_log_is_bounded_and_expires) {
  mailroom::memory_attempt_log_settings s;
  s.capacity = 3;
  s.ttl = 50ms;
  mailroom::memory_attempt_log log{s};
  mailroom::attempt_history h{1, {"e"}};
  std::vector<std::string> ids{"a", "b", "c", "d"};
  for (const auto& id : ids) {
    BOOST_REQUIRE(bool(log.record({{id, &h}})));
  }
  // The least recently recorded went first.
  BOOST_TEST(log.size() == 3u);
  std::vector<std::optional<mailroom::attempt_history>> got;
  BOOST_REQUIRE(bool(log.load({"a", "b", "d"}, got)));
  BOOST_TEST(!got[0].has_value());
  BOOST_TEST(got[1].has_value());
  BOOST_TEST(got[2].has_value());
  std::this_thread::sleep_for(80ms);
  BOOST_REQUIRE(bool(log.load({"b", "c", "d"}, got)));
  BOOST_TEST(!got[0].has_value());
  BOOST_TEST(!got[1].has_value());
  BOOST_TEST(!got[2].has_value());
  BOOST_TEST(log.size() == 0u);

  log.set_available(false);
  BOOST_TEST((log.record({{"x", &h}}).failure == mailroom::failure_class::transient));
  BOOST_TEST(!log.load({"x"}, got));
  BOOST_TEST(got.empty());
  BOOST_TEST(!log.forget({"x"}));
}
