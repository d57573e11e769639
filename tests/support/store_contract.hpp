#pragma once

// The behaviour every idempotency_store and claim_store must have, written
// once and run by each implementation's test file against its own instance
// (memory_stores_test with a hand-moved clock, redis_stores_test against a
// real redis-server), as redis-plus-plus runs one test body against each of
// its clients. What only one implementation has (round trips, byte layout,
// hash-table internals) stays in that implementation's file.
//
// Include after <boost/test/unit_test.hpp>.

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/claim_store.hpp"
#include "core/idempotency_store.hpp"

BOOST_TEST_DONT_PRINT_LOG_VALUE(mailroom::claim_result::state)
BOOST_TEST_DONT_PRINT_LOG_VALUE(mailroom::fence_result)

namespace mailroom::testing::store_contract {

using namespace std::chrono_literals;
using state = claim_result::state;

/// Lets `d` pass for the store: a fake clock moves, a real server is slept on.
using advance_fn = std::function<void(std::chrono::milliseconds d)>;

/// The TTLs and waits of the timed tests, in units of `tick`: 1 ms for a
/// fake clock, more for a real server, so a sleep that overshoots on a busy
/// machine does not cross a TTL the test means to stay within.
struct timing {
  advance_fn advance;
  std::chrono::milliseconds tick{1};
  std::chrono::milliseconds operator()(int n) const { return n * tick; }
};

/// Claims one key and returns its result.
inline claim_result claim_one(idempotency_store& s, std::string_view key,
                              std::chrono::milliseconds ttl = 10s) {
  auto r = s.claim({key}, ttl);
  BOOST_REQUIRE(r.size() == 1u);
  return r[0];
}

/// Completes one key and returns its result.
inline fence_result complete_one(idempotency_store& s, std::string_view key,
                                 fencing_token token, std::string_view result = "ok",
                                 std::chrono::milliseconds ttl = 10s) {
  auto r = s.complete({done_mark{key, token, result}}, ttl);
  BOOST_REQUIRE(r.size() == 1u);
  return r[0];
}

// ---- idempotency_store ----------------------------------------------------------

/// fresh, then in_flight while claimed, then done with the result; a
/// repeated complete with the winning token is harmless and changes nothing.
inline void claim_goes_fresh_then_in_flight_then_done(idempotency_store& s) {
  auto first = claim_one(s, "a");
  BOOST_TEST(first.status == state::fresh);
  BOOST_TEST(first.token != 0u);
  BOOST_TEST(claim_one(s, "a").status == state::in_flight);
  BOOST_TEST(complete_one(s, "a", first.token, "result-a") == fence_result::applied);
  auto again = claim_one(s, "a");
  BOOST_TEST(again.status == state::done);
  BOOST_TEST(again.result == "result-a");
  BOOST_TEST(again.token == 0u);
  BOOST_TEST(complete_one(s, "a", first.token, "other") == fence_result::applied);
  BOOST_TEST(claim_one(s, "a").result == "result-a");
}

/// One batch of fresh, done and in-flight keys answers each in order; a key
/// repeated in the batch is fresh once and in_flight after.
inline void a_mixed_batch_answers_each_key_in_order(idempotency_store& s) {
  auto done = claim_one(s, "done");
  BOOST_REQUIRE(complete_one(s, "done", done.token, "earlier") == fence_result::applied);
  BOOST_REQUIRE(claim_one(s, "busy").status == state::fresh);
  auto r = s.claim({"new-1", "done", "busy", "new-2", "new-1"}, 10s);
  BOOST_REQUIRE(r.size() == 5u);
  BOOST_TEST(r[0].status == state::fresh);
  BOOST_TEST(r[1].status == state::done);
  BOOST_TEST(r[1].result == "earlier");
  BOOST_TEST(r[2].status == state::in_flight);
  BOOST_TEST(r[3].status == state::fresh);
  BOOST_TEST(r[4].status == state::in_flight);
  BOOST_TEST(r[0].token != r[3].token);
}

/// `n` fresh keys get `n` distinct tokens, none 0.
inline void tokens_are_distinct_and_never_zero(idempotency_store& s, int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    names.push_back("token-" + std::to_string(i));
  }
  std::vector<std::string_view> keys(names.begin(), names.end());
  std::set<fencing_token> tokens;
  for (const auto& c : s.claim(keys, 10s)) {
    BOOST_TEST_REQUIRE(c.status == state::fresh);
    BOOST_TEST_REQUIRE(c.token != 0u);
    tokens.insert(c.token);
  }
  BOOST_TEST(tokens.size() == static_cast<std::size_t>(n));
}

/// A claim past its TTL is taken over with a new token; the old token can
/// neither complete nor release any more, the new one can.
inline void an_expired_claim_is_taken_over_and_fences_the_old_token(idempotency_store& s,
                                                                    const timing& t) {
  auto old_claim = claim_one(s, "k", t(100));
  BOOST_REQUIRE(old_claim.status == state::fresh);
  t.advance(t(30));
  BOOST_TEST(claim_one(s, "k", t(100)).status == state::in_flight);
  t.advance(t(90)); // the first claim expired
  auto new_claim = claim_one(s, "k", 10s);
  BOOST_REQUIRE(new_claim.status == state::fresh);
  BOOST_TEST(new_claim.token != old_claim.token);
  BOOST_TEST(complete_one(s, "k", old_claim.token, "stale") == fence_result::fenced);
  BOOST_TEST(s.release("k", old_claim.token) == fence_result::fenced);
  BOOST_TEST(claim_one(s, "k").status == state::in_flight); // the new claim survived
  BOOST_TEST(complete_one(s, "k", new_claim.token, "fresh") == fence_result::applied);
  BOOST_TEST(claim_one(s, "k").result == "fresh");
}

/// An expired claim fences its own token too, and the key is fresh again.
inline void an_expired_claim_fences_its_own_token(idempotency_store& s, const timing& t) {
  auto c = claim_one(s, "own", t(100));
  t.advance(t(120));
  BOOST_TEST(complete_one(s, "own", c.token) == fence_result::fenced);
  BOOST_TEST(s.release("own", c.token) == fence_result::fenced);
  BOOST_TEST(claim_one(s, "own").status == state::fresh);
}

/// Release deletes a live claim only with its token; a done key is never
/// released; a key never claimed cannot be completed.
inline void release_and_complete_need_the_live_token(idempotency_store& s) {
  auto r = claim_one(s, "r");
  BOOST_TEST(s.release("r", r.token + 1) == fence_result::fenced);
  BOOST_TEST(claim_one(s, "r").status == state::in_flight);
  BOOST_TEST(s.release("r", r.token) == fence_result::applied);
  BOOST_TEST(s.release("r", r.token) == fence_result::fenced);
  auto again = claim_one(s, "r"); // claimable again at once
  BOOST_TEST(again.status == state::fresh);
  BOOST_TEST(s.release("missing", again.token) == fence_result::fenced);
  BOOST_TEST(complete_one(s, "r", again.token) == fence_result::applied);
  BOOST_TEST(s.release("r", again.token) == fence_result::fenced); // done stays done
  BOOST_TEST(claim_one(s, "r").status == state::done);
  BOOST_TEST(complete_one(s, "never-claimed", 42) == fence_result::fenced);
  BOOST_TEST(complete_one(s, "never-claimed", 0) == fence_result::fenced);
  BOOST_TEST(claim_one(s, "never-claimed").status == state::fresh);
}

/// A result is kept for the TTL given to complete, then the key is fresh.
inline void results_expire_with_their_ttl(idempotency_store& s, const timing& t) {
  auto c = claim_one(s, "short", 10s);
  BOOST_REQUIRE(c.status == state::fresh);
  BOOST_TEST(complete_one(s, "short", c.token, "r", t(100)) == fence_result::applied);
  t.advance(t(30));
  BOOST_TEST(claim_one(s, "short").status == state::done);
  t.advance(t(90));
  BOOST_TEST(claim_one(s, "short").status == state::fresh);
}

// ---- claim_store ----------------------------------------------------------------

/// A dispatch record with only what the claim store looks at.
inline dispatch_record record(const std::string& key, fencing_token token,
                              clock::time_point dispatched, clock::time_point expires) {
  dispatch_record r;
  r.message.key = key;
  r.message.id = "id-" + key;
  r.token = token;
  r.dispatched = dispatched;
  r.claim_expires = expires;
  return r;
}

/// The message keys of `rs`, in order.
inline std::vector<std::string> keys_of(const std::vector<dispatch_record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) {
    out.push_back(r.message.key);
  }
  return out;
}

/// list_stale lists records dispatched before the cutoff, oldest first, up
/// to the limit; list_reclaimable lists expired claims, earliest expiry
/// first; listing removes nothing; a record written again replaces the old.
inline void records_are_listed_by_dispatch_time_and_by_expiry(claim_store& s) {
  auto now = clock::now();
  BOOST_REQUIRE(static_cast<bool>(s.record_dispatch({
      record("d", 4, now - 1s, now + 60s), // recent, claim alive
      record("a", 1, now - 10s, now - 3s), // stale, claim expired
      record("c", 3, now - 5s, now - 8s),  // stale, expired earliest
      record("b", 2, now - 7s, now + 60s), // stale, claim alive
  })));
  BOOST_TEST(s.pending() == 4u);
  std::vector<dispatch_record> stale;
  BOOST_REQUIRE(static_cast<bool>(s.list_stale(now - 2s, 10, stale)));
  BOOST_TEST((keys_of(stale) == std::vector<std::string>{"a", "b", "c"}));
  BOOST_REQUIRE(!stale.empty());
  BOOST_TEST(stale[0].token == 1u);
  BOOST_TEST(stale[0].message.id == "id-a");
  stale.clear();
  BOOST_REQUIRE(static_cast<bool>(s.list_stale(now - 2s, 2, stale)));
  BOOST_TEST((keys_of(stale) == std::vector<std::string>{"a", "b"}));
  stale.clear();
  BOOST_REQUIRE(static_cast<bool>(s.list_stale(now - 60s, 10, stale)));
  BOOST_TEST(stale.empty());

  std::vector<dispatch_record> expired;
  BOOST_REQUIRE(static_cast<bool>(s.list_reclaimable(now, 10, expired)));
  BOOST_TEST((keys_of(expired) == std::vector<std::string>{"c", "a"}));
  expired.clear();
  BOOST_REQUIRE(static_cast<bool>(s.list_reclaimable(now, 1, expired)));
  BOOST_TEST((keys_of(expired) == std::vector<std::string>{"c"}));
  expired.clear();
  BOOST_REQUIRE(static_cast<bool>(s.list_reclaimable(now, 0, expired)));
  BOOST_TEST(expired.empty());
  BOOST_TEST(s.pending() == 4u); // listing removes nothing

  BOOST_REQUIRE(static_cast<bool>(s.record_dispatch({record("a", 9, now, now + 60s)})));
  stale.clear();
  BOOST_REQUIRE(static_cast<bool>(s.list_stale(now - 2s, 10, stale)));
  BOOST_TEST((keys_of(stale) == std::vector<std::string>{"b", "c"}));
  BOOST_TEST(s.pending() == 4u);
}

/// mark_terminal removes a record only with its current token; a record
/// re-dispatched under a newer token is no longer the old token's;
/// mark_terminal_all does the same for a batch.
inline void mark_terminal_is_fenced_by_token(claim_store& s) {
  auto now = clock::now();
  BOOST_REQUIRE(static_cast<bool>(s.record_dispatch(
      {record("a", 1, now - 9s, now - 9s), record("b", 2, now - 8s, now - 8s),
       record("c", 3, now - 7s, now - 7s), record("d", 4, now - 6s, now - 6s)})));
  BOOST_TEST(s.mark_terminal("a", 99) == fence_result::fenced);
  BOOST_TEST(s.mark_terminal("a", 1) == fence_result::applied);
  BOOST_TEST(s.mark_terminal("a", 1) == fence_result::fenced);
  BOOST_TEST(s.mark_terminal("never", 1) == fence_result::fenced);
  BOOST_TEST(s.pending() == 3u);

  BOOST_REQUIRE(static_cast<bool>(s.record_dispatch({record("b", 20, now, now)})));
  BOOST_TEST(s.pending() == 3u);
  s.mark_terminal_all(
      {terminal_mark{"b", 2}, terminal_mark{"c", 3}, terminal_mark{"d", 5}});
  std::vector<dispatch_record> left;
  BOOST_REQUIRE(static_cast<bool>(s.list_stale(now + 1s, 10, left)));
  BOOST_TEST((keys_of(left) == std::vector<std::string>{"d", "b"}));
  BOOST_TEST(s.pending() == 2u);
  s.mark_terminal_all({});
  s.mark_terminal_all({terminal_mark{"b", 20}, terminal_mark{"d", 4}});
  BOOST_TEST(s.pending() == 0u);
  left.clear();
  BOOST_REQUIRE(static_cast<bool>(s.list_stale(now + 1h, 10, left)));
  BOOST_TEST(left.empty());
}

} // namespace mailroom::testing::store_contract

/// Registers every idempotency-store contract test, each run on a fresh
/// `Fixture`, which provides `s` (the store) and `time` (a timing).
#define MAILROOM_IDEMPOTENCY_STORE_CONTRACT(Fixture)                                     \
  BOOST_FIXTURE_TEST_CASE(contract_claim_goes_fresh_then_in_flight_then_done, Fixture) { \
    mailroom::testing::store_contract::claim_goes_fresh_then_in_flight_then_done(s);     \
  }                                                                                      \
  BOOST_FIXTURE_TEST_CASE(contract_a_mixed_batch_answers_each_key_in_order, Fixture) {   \
    mailroom::testing::store_contract::a_mixed_batch_answers_each_key_in_order(s);       \
  }                                                                                      \
  BOOST_FIXTURE_TEST_CASE(contract_tokens_are_distinct_and_never_zero, Fixture) {        \
    mailroom::testing::store_contract::tokens_are_distinct_and_never_zero(s, 1000);      \
  }                                                                                      \
  BOOST_FIXTURE_TEST_CASE(contract_an_expired_claim_is_taken_over, Fixture) {            \
    mailroom::testing::store_contract::                                                  \
        an_expired_claim_is_taken_over_and_fences_the_old_token(s, time);                \
  }                                                                                      \
  BOOST_FIXTURE_TEST_CASE(contract_an_expired_claim_fences_its_own_token, Fixture) {     \
    mailroom::testing::store_contract::an_expired_claim_fences_its_own_token(s, time);   \
  }                                                                                      \
  BOOST_FIXTURE_TEST_CASE(contract_release_and_complete_need_the_live_token, Fixture) {  \
    mailroom::testing::store_contract::release_and_complete_need_the_live_token(s);      \
  }                                                                                      \
  BOOST_FIXTURE_TEST_CASE(contract_results_expire_with_their_ttl, Fixture) {             \
    mailroom::testing::store_contract::results_expire_with_their_ttl(s, time);           \
  }
