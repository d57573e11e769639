#pragma once

// The behaviour every transport must have, written once and run against each
// one's fixture (memory_transport_test; redis_streams_test against a real
// redis-server; Kafka and SQS next), as store_contract.hpp is for stores.
//
// A fixture is a Boost.Test fixture with these members:
//
//   std::shared_ptr<transport> t;          the transport under test
//   void produce(const std::string& key, const std::string& payload);
//                                          one message, by the broker's own client
//   bool make_poison();                    something the next polls hand over as
//                                          poison (undecodable, or over the limit);
//                                          false when the transport has none (Kafka:
//                                          the engine finds its poison)
//   std::vector<std::string> dlq_reasons();  the DLQ's records' reasons, oldest first
//   std::chrono::milliseconds lease;       how long an unsettled delivery stays ours
//
// A transport that cannot redeliver by lease (Kafka) sets `lease` to zero;
// the stale-receipt case then only checks that settling twice is harmless.
//
// Include after <boost/test/unit_test.hpp>.

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/transport.hpp"

namespace mailroom::testing::transport_contract {

using namespace std::chrono_literals;

/// Polls until `n` deliveries arrived or `limit` passed; returns them.
inline envelope_batch poll_until(transport& t, std::size_t n,
                                 std::chrono::milliseconds limit = 10s) {
  envelope_batch out;
  auto end = std::chrono::steady_clock::now() + limit;
  while (out.size() < n && std::chrono::steady_clock::now() < end) {
    auto r = t.poll(n - out.size(), 50ms, out);
    BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  }
  return out;
}

/// Polls for `d` and returns whatever arrived.
inline envelope_batch poll_for(transport& t, std::chrono::milliseconds d) {
  envelope_batch out;
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    auto r = t.poll(16, 20ms, out);
    BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  }
  return out;
}

inline void ack_one(transport& t, const envelope& m) {
  auto r = t.ack({&m});
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
}

/// Produced messages arrive with their payload and key; acked ones are not
/// delivered again.
template <class F> void poll_then_ack(F& f) {
  f.produce("k-1", "p-1");
  f.produce("k-2", "p-2");
  f.produce("k-3", "p-3");
  auto got = poll_until(*f.t, 3);
  BOOST_REQUIRE(got.size() == 3u);
  std::set<std::string> payloads, keys, ids;
  for (const auto& m : got) {
    payloads.insert(m.payload);
    keys.insert(m.key);
    ids.insert(m.id);
    BOOST_TEST(m.poison.empty());
    BOOST_TEST(m.attempt == 1u);
    BOOST_TEST(m.attempt_errors.empty());
  }
  BOOST_TEST((payloads == std::set<std::string>{"p-1", "p-2", "p-3"}));
  BOOST_TEST((keys == std::set<std::string>{"k-1", "k-2", "k-3"}));
  BOOST_TEST(ids.size() == 3u);
  std::vector<const envelope*> all;
  for (const auto& m : got) {
    all.push_back(&m);
  }
  auto r = f.t->ack(all);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  auto wait = f.lease.count() > 0 ? f.lease + 200ms : 500ms;
  BOOST_TEST(poll_for(*f.t, wait).empty());
}

/// A nack hands the message back after its delay, not before; each
/// redelivery counts (when the broker counts deliveries).
template <class F> void nack_with_delay_redelivers(F& f) {
  f.produce("k-n", "again");
  auto got = poll_until(*f.t, 1);
  BOOST_REQUIRE(got.size() == 1u);
  auto nacked_at = std::chrono::steady_clock::now();
  BOOST_REQUIRE(static_cast<bool>(f.t->nack(got[0], 400ms)));
  auto early = poll_for(*f.t, 200ms);
  BOOST_TEST(early.empty());
  auto again = poll_until(*f.t, 1);
  BOOST_REQUIRE(again.size() == 1u);
  BOOST_TEST((std::chrono::steady_clock::now() - nacked_at >= 350ms));
  BOOST_TEST(again[0].payload == "again");
  BOOST_TEST(again[0].key == "k-n");
  BOOST_REQUIRE(static_cast<bool>(f.t->nack(again[0], 0ms)));
  auto third = poll_until(*f.t, 1);
  BOOST_REQUIRE(third.size() == 1u);
  if (f.t->counts_deliveries()) {
    BOOST_TEST(again[0].attempt == 2u);
    BOOST_TEST(third[0].attempt == 3u);
  }
  // The error history is the engine's: a transport never carries one.
  BOOST_TEST(third[0].attempt_errors.empty());
  ack_one(*f.t, third[0]);
  BOOST_TEST(poll_for(*f.t, 300ms).empty());
}

/// A dead-lettered message is in the DLQ with its reason and is not
/// delivered again.
template <class F> void dead_letter_records_and_settles(F& f) {
  f.produce("k-d", "doomed");
  auto got = poll_until(*f.t, 1);
  BOOST_REQUIRE(got.size() == 1u);
  dead_letter_record rec;
  rec.reason = "contract: rejected";
  rec.attempts = got[0].attempt;
  rec.errors = {"e1"};
  rec.payload = got[0].payload;
  auto r = f.t->dead_letter(got[0], rec);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  BOOST_TEST(!r.stale);
  auto reasons = f.dlq_reasons();
  BOOST_REQUIRE(reasons.size() == 1u);
  BOOST_TEST(reasons[0] == "contract: rejected");
  auto wait = f.lease.count() > 0 ? f.lease + 200ms : 500ms;
  BOOST_TEST(poll_for(*f.t, wait).empty());
  if (auto depth = f.t->dead_letter_depth()) {
    BOOST_TEST(*depth == 1u);
  }
}

/// A delivery whose lease ran out is delivered again; settling the older
/// delivery afterwards changes nothing (stale), the newer one settles it.
template <class F> void a_stale_receipt_changes_nothing(F& f) {
  f.produce("k-s", "slow");
  auto first = poll_until(*f.t, 1);
  BOOST_REQUIRE(first.size() == 1u);
  if (f.lease.count() == 0) {
    ack_one(*f.t, first[0]);
    ack_one(*f.t, first[0]); // twice is harmless
    return;
  }
  std::this_thread::sleep_for(f.lease + 100ms);
  auto second = poll_until(*f.t, 1);
  BOOST_REQUIRE(second.size() == 1u);
  BOOST_TEST(second[0].id == first[0].id);
  if (f.t->counts_deliveries()) {
    BOOST_TEST(second[0].attempt == 2u);
  }
  auto nack = f.t->nack(first[0], 0ms);
  BOOST_TEST((!nack || nack.stale)); // never an applied nack of a stale delivery
  dead_letter_record rec;
  rec.reason = "stale";
  auto dl = f.t->dead_letter(first[0], rec);
  BOOST_TEST((dl.stale || !dl));
  BOOST_TEST(f.dlq_reasons().empty());
  ack_one(*f.t, second[0]);
  BOOST_TEST(poll_for(*f.t, f.lease + 200ms).empty());
}

/// What the transport cannot deliver comes from poll as poison, with the
/// reason; dead-lettering it settles it like any delivery.
template <class F> void poison_comes_from_poll(F& f) {
  if (!f.make_poison()) {
    BOOST_TEST_MESSAGE("this transport hands over no poison of its own");
    return;
  }
  envelope_batch got;
  auto end = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < end) {
    got = poll_until(*f.t, 1, 1s);
    if (!got.empty() && !got[0].poison.empty()) {
      break;
    }
    if (!got.empty()) {
      BOOST_REQUIRE(static_cast<bool>(f.t->nack(got[0], 0ms)));
    }
  }
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_REQUIRE(!got[0].poison.empty());
  dead_letter_record rec;
  rec.reason = got[0].poison;
  rec.attempts = got[0].attempt;
  auto r = f.t->dead_letter(got[0], rec);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  auto reasons = f.dlq_reasons();
  BOOST_REQUIRE(reasons.size() == 1u);
  BOOST_TEST(reasons[0] == got[0].poison);
  auto wait = f.lease.count() > 0 ? f.lease + 200ms : 500ms;
  BOOST_TEST(poll_for(*f.t, wait).empty());
}

/// After close() a poll returns at once and empty, and closing twice is
/// harmless.
template <class F> void close_ends_polling(F& f) {
  f.produce("k-c", "left");
  BOOST_REQUIRE(static_cast<bool>(f.t->close()));
  envelope_batch out;
  auto started = std::chrono::steady_clock::now();
  auto r = f.t->poll(10, 2000ms, out);
  BOOST_TEST(static_cast<bool>(r));
  BOOST_TEST(out.empty());
  BOOST_TEST((std::chrono::steady_clock::now() - started < 1000ms));
  BOOST_TEST(static_cast<bool>(f.t->close()));
}

} // namespace mailroom::testing::transport_contract

/// Declares every contract case for `Fixture`.
#define MAILROOM_TRANSPORT_CONTRACT(Fixture)                                              \
  BOOST_FIXTURE_TEST_CASE(contract_poll_then_ack, Fixture) {                              \
    mailroom::testing::transport_contract::poll_then_ack(*this);                          \
  }                                                                                       \
  BOOST_FIXTURE_TEST_CASE(contract_nack_with_delay_redelivers, Fixture) {                 \
    mailroom::testing::transport_contract::nack_with_delay_redelivers(*this);             \
  }                                                                                       \
  BOOST_FIXTURE_TEST_CASE(contract_dead_letter_records_and_settles, Fixture) {            \
    mailroom::testing::transport_contract::dead_letter_records_and_settles(*this);        \
  }                                                                                       \
  BOOST_FIXTURE_TEST_CASE(contract_a_stale_receipt_changes_nothing, Fixture) {            \
    mailroom::testing::transport_contract::a_stale_receipt_changes_nothing(*this);        \
  }                                                                                       \
  BOOST_FIXTURE_TEST_CASE(contract_poison_comes_from_poll, Fixture) {                     \
    mailroom::testing::transport_contract::poison_comes_from_poll(*this);                 \
  }                                                                                       \
  BOOST_FIXTURE_TEST_CASE(contract_close_ends_polling, Fixture) {                         \
    mailroom::testing::transport_contract::close_ends_polling(*this);                     \
  }
