#define BOOST_TEST_MODULE engine_paths
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tests/support/engine_harness.hpp"

using namespace mailroom;
using namespace mailroom::testing;

BOOST_AUTO_TEST_CASE(ok_path_acks_every_message_once) {
  engine_harness h;
  auto& calls = h.ack_and_count();
  h.publish_many(1000);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 1000);
  BOOST_TEST(m.acked == 1000u);
  BOOST_TEST(m.retried == 0u);
  BOOST_TEST(m.dead_lettered == 0u);
  BOOST_TEST(m.in_flight == 0);
  BOOST_TEST(h.transport->stats().acked == 1000u);
  BOOST_TEST(h.transport->stats().delivered == 1000u);
}

BOOST_AUTO_TEST_CASE(retry_outcome_is_nacked_then_succeeds) {
  engine_harness h;
  std::mutex mu;
  std::map<std::string, std::vector<std::uint32_t>> attempts;
  h.handlers.add("orders", [&](const envelope& m, handler_context& ctx) {
    std::lock_guard<std::mutex> g{mu};
    attempts[m.id].push_back(ctx.attempt);
    return ctx.attempt < 3 ? outcome::retry("not yet") : outcome::ok();
  });
  h.publish_many(50);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.retried == 100u);
  BOOST_TEST(m.acked == 50u);
  BOOST_TEST(m.dead_lettered == 0u);
  for (auto& [id, seen] : attempts) {
    std::string got;
    for (auto a : seen) {
      got += std::to_string(a) + " ";
    }
    BOOST_TEST((seen == std::vector<std::uint32_t>{1, 2, 3}), id << ": " << got);
  }
}

BOOST_AUTO_TEST_CASE(a_retry_of_a_delivery_already_redelivered_counts_as_fenced) {
  // The first delivery outlives its visibility timeout (nothing renews it:
  // the engine sees no leases); the transport hands the message out again,
  // and that delivery acks it. The first one's retry then finds its receipt
  // stale: nothing happens, and it is not a retry.
  engine_harness h{100ms};
  h.renew_leases = false;
  h.cfg.dedupe.enabled = false;
  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope&, handler_context& ctx) {
    calls++;
    if (ctx.attempt == 1) {
      std::this_thread::sleep_for(1000ms); // ten visibility timeouts
      return outcome::retry("too slow");
    }
    return outcome::ok();
  });
  h.publish("m-1", "k-1", "p");
  h.start(false);
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 2);
  BOOST_TEST(m.acked == 1u);
  BOOST_TEST(m.retried == 0u);
  BOOST_TEST(m.fenced == 1u);
  BOOST_TEST(h.transport->stats().stale_settles == 1u);
  BOOST_TEST(h.transport->stats().nacked == 0u);
}

BOOST_AUTO_TEST_CASE(dead_letter_outcome_skips_the_budget_and_masks_fields) {
  engine_harness h;
  h.cfg.dead_letter.mask_fields = {"$.card.number"};
  h.cfg.dead_letter.mask_regex = "secret-[0-9]+";
  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    calls++;
    return outcome::dead_letter("invalid order");
  });
  h.publish("m-1", "k-1", R"({"card":{"number":"4111111111111111"},"note":"secret-42"})");
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(m.dead_lettered == 1u);
  BOOST_TEST(m.retried == 0u);
  auto dlq = h.transport->dead_letters();
  BOOST_REQUIRE(dlq.size() == 1u);
  auto& rec = dlq[0].record;
  BOOST_TEST(rec.reason == "invalid order");
  BOOST_TEST(rec.attempts == 1u);
  BOOST_TEST(rec.origin.find("orders") != std::string::npos);
  BOOST_TEST(rec.origin.find("m-1") != std::string::npos);
  BOOST_TEST(rec.dead_lettered_at_ms > 0);
  BOOST_TEST(rec.payload.find("4111111111111111") == std::string::npos);
  BOOST_TEST(rec.payload.find("secret-42") == std::string::npos);
  BOOST_TEST(rec.payload.find("***") != std::string::npos);
  // The key is released, so a replay from the DLQ would be handled again.
  auto k1 = h.store_key("k-1");
  std::vector<std::string_view> keys{k1};
  BOOST_TEST((h.store->claim(keys, 1000ms)[0].status == claim_result::state::fresh));
}

BOOST_AUTO_TEST_CASE(exceptions_count_as_retry_and_exhaust_into_the_dlq_with_history) {
  engine_harness h;
  h.cfg.retry.max_attempts = 4;
  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope&, handler_context& ctx) -> outcome {
    calls++;
    throw std::runtime_error("boom " + std::to_string(ctx.attempt));
  });
  h.publish("m-1", "k-1", "{}");
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 4);
  BOOST_TEST(m.handler_errors == 4u);
  BOOST_TEST(m.retried == 3u);
  BOOST_TEST(m.dead_lettered == 1u);
  auto dlq = h.transport->dead_letters();
  BOOST_REQUIRE(dlq.size() == 1u);
  auto& rec = dlq[0].record;
  BOOST_TEST(rec.attempts == 4u);
  BOOST_REQUIRE(rec.errors.size() == 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    BOOST_TEST(rec.errors[i] == "handler threw: boom " + std::to_string(i + 1));
  }
  BOOST_TEST(rec.reason.find("max attempts (4) exhausted") != std::string::npos);
  BOOST_TEST(rec.reason.find("boom 4") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_handler_past_its_timeout_is_abandoned_and_retried) {
  engine_harness h;
  h.cfg.engine.handler_timeout = 150ms;
  h.cfg.engine.workers = 1;
  // Shared, not on this stack: the abandoned handler outlives the engine.
  struct stuck_state {
    std::atomic<int> calls{0};
    std::atomic<bool> release{false};
    std::atomic<bool> returned{false};
  };
  auto st = std::make_shared<stuck_state>();
  h.handlers.add("orders", [st](const envelope& m, handler_context& ctx) {
    st->calls++;
    if (m.id == "m-0" && ctx.attempt == 1) {
      // Ignores cancellation on purpose: the engine must not wait for it.
      while (!st->release.load()) {
        std::this_thread::sleep_for(5ms);
      }
      st->returned = true;
      return outcome::ok(); // late: must be discarded
    }
    return outcome::ok();
  });
  h.publish_many(20);
  h.start();
  BOOST_REQUIRE(h.run_to_end(10000ms));
  auto m = h.finish();
  st->release = true;
  BOOST_REQUIRE(eventually([&] { return st->returned.load(); }));
  BOOST_TEST(m.timeouts == 1u);
  BOOST_TEST(m.retried == 1u);
  BOOST_TEST(m.acked == 20u);
  BOOST_TEST(st->calls.load() == 21);
  BOOST_TEST(h.transport->stats().acked == 20u);
}

BOOST_AUTO_TEST_CASE(done_keys_are_acked_without_running_the_handler) {
  engine_harness h;
  auto k1 = h.store_key("k-1"), k2 = h.store_key("k-2");
  std::vector<std::string_view> keys{k1, k2};
  auto claims = h.store->claim(keys, 10000ms);
  h.store->complete({{k1, claims[0].token, "r1"}, {k2, claims[1].token, "r2"}}, 60000ms);
  auto& calls = h.ack_and_count();
  h.publish_many(5);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 3);
  BOOST_TEST(m.deduped == 2u);
  BOOST_TEST(m.acked == 5u);
}

BOOST_AUTO_TEST_CASE(in_flight_keys_are_deferred_until_the_claim_is_released) {
  engine_harness h;
  auto k0 = h.store_key("k-0");
  std::vector<std::string_view> keys{k0};
  auto token = h.store->claim(keys, 60000ms)[0].token;
  auto& calls = h.ack_and_count();
  h.publish_many(1);
  h.start();
  BOOST_REQUIRE(eventually([&] { return h.eng->metrics().deferred >= 3; }));
  BOOST_TEST(calls.load() == 0);
  h.store->release(k0, token);
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(m.acked == 1u);
  BOOST_TEST(m.retried == 0u); // deferrals are not failures
}

BOOST_AUTO_TEST_CASE(duplicates_in_one_batch_run_the_handler_once) {
  engine_harness h;
  auto& calls = h.ack_and_count();
  for (int i = 0; i < 10; ++i) {
    h.publish("m-" + std::to_string(i), "same-key", "{}");
  }
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(m.acked == 10u);
  BOOST_TEST(m.deduped == 9u);
}

BOOST_AUTO_TEST_CASE(store_outage_fail_open_processes_unclaimed) {
  engine_harness h;
  h.cfg.dedupe.on_store_error = store_failure_policy::fail_open;
  h.store->set_available(false);
  auto& calls = h.ack_and_count();
  h.publish_many(100);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 100);
  BOOST_TEST(m.acked == 100u);
  BOOST_TEST(m.store_errors >= 100u);
}

BOOST_AUTO_TEST_CASE(store_outage_fail_closed_hands_back_until_the_store_returns) {
  engine_harness h;
  h.cfg.dedupe.on_store_error = store_failure_policy::fail_closed;
  h.store->set_available(false);
  auto& calls = h.ack_and_count();
  h.publish_many(100);
  h.start();
  BOOST_REQUIRE(eventually([&] { return h.eng->metrics().deferred >= 200; }));
  BOOST_TEST(calls.load() == 0);
  BOOST_TEST(h.transport->stats().acked == 0u);
  h.store->set_available(true);
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 100);
  BOOST_TEST(m.acked == 100u);
  BOOST_TEST(m.retried == 0u);
  BOOST_TEST(h.transport->stats().acked == 100u);
}

BOOST_AUTO_TEST_CASE(store_down_at_complete_hands_the_message_back_instead_of_acking) {
  engine_harness h;
  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    if (calls++ == 0) {
      h.store->set_available(false); // the outage begins mid-handler
    }
    return outcome::ok();
  });
  h.cfg.dedupe.claim_ttl = 50ms; // the stranded claim expires quickly
  h.publish_many(1);
  h.start();
  BOOST_REQUIRE(eventually([&] { return h.eng->metrics().store_errors >= 1; }));
  BOOST_TEST(h.transport->stats().acked == 0u); // not acked while unrecorded
  h.store->set_available(true);
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 2);
  BOOST_TEST(m.acked == 1u);
  BOOST_TEST(h.transport->stats().acked == 1u);
}

BOOST_AUTO_TEST_CASE(a_stale_worker_cannot_complete_a_claim_taken_over) {
  // The store's clock is moved by the test: the first handler call lets its
  // claim expire, another claimant takes the key over, and the late complete
  // is refused (fenced) instead of acking.
  std::atomic<std::int64_t> offset_ms{0};
  auto now = [&] { return clock::now() + std::chrono::milliseconds{offset_ms.load()}; };
  engine_harness h{300ms, now};
  fencing_token thief = 0;
  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    if (calls++ == 0) {
      offset_ms += 20000; // past claim_ttl (10 s)
      auto k0 = h.store_key("k-0");
      std::vector<std::string_view> keys{k0};
      auto r = h.store->claim(keys, 60000ms);
      BOOST_TEST((r[0].status == claim_result::state::fresh));
      thief = r[0].token;
    }
    return outcome::ok();
  });
  h.publish_many(1);
  h.start();
  BOOST_REQUIRE(eventually([&] { return h.eng->metrics().fenced == 1; }));
  BOOST_TEST(h.transport->stats().acked == 0u);
  // The new owner finishes; the redelivery is then a duplicate of a done key.
  h.store->complete({{h.store_key("k-0"), thief, "done by thief"}}, 60000ms);
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(m.fenced == 1u);
  BOOST_TEST(m.deduped == 1u);
  BOOST_TEST(h.transport->stats().acked == 1u);
}

BOOST_AUTO_TEST_CASE(unknown_topics_follow_the_configured_policy) {
  for (auto policy : {unknown_topic_policy::ack, unknown_topic_policy::dead_letter}) {
    engine_harness h;
    h.cfg.engine.unknown_topic = policy;
    h.handlers.add("orders",
                   [](const envelope&, handler_context&) { return outcome::ok(); });
    h.publish_many(3, "elsewhere");
    h.start();
    BOOST_REQUIRE(h.run_to_end());
    auto m = h.finish();
    if (policy == unknown_topic_policy::ack) {
      BOOST_TEST(m.unrouted == 3u);
      BOOST_TEST(m.acked == 3u);
    } else {
      BOOST_TEST(m.dead_lettered == 3u);
      auto dlq = h.transport->dead_letters();
      BOOST_REQUIRE(dlq.size() == 3u);
      BOOST_TEST(dlq[0].record.reason == "no handler for topic 'elsewhere'");
    }
  }
}

namespace {

const topic_counts* counts_of(const metrics_snapshot& m, const std::string& topic) {
  for (const auto& t : m.topics) {
    if (t.topic == topic) {
      return &t;
    }
  }
  return nullptr;
}

} // namespace

BOOST_AUTO_TEST_CASE(counters_are_kept_per_topic_and_sum_to_the_totals) {
  engine_harness h;
  h.cfg.retry.max_attempts = 2;
  // orders: all ok, two of them duplicates of done keys. refunds: each
  // throws once then succeeds, except "bad" ones, which are dead-lettered.
  auto k1 = h.store_key("k-1");
  std::vector<std::string_view> keys{k1};
  auto claims = h.store->claim(keys, 10000ms);
  h.store->complete({{k1, claims[0].token, "r1"}}, 60000ms);
  h.handlers.add("orders", [](const envelope&, handler_context&) { return outcome::ok(); });
  h.handlers.add("refunds", [](const envelope& m, handler_context& ctx) -> outcome {
    if (m.payload == "bad") {
      return outcome::dead_letter("refund refused");
    }
    if (ctx.attempt == 1) {
      throw std::runtime_error("flaky");
    }
    return outcome::ok();
  });
  h.publish_many(30, "orders");
  for (int i = 0; i < 12; ++i) {
    h.publish("r-" + std::to_string(i), "rk-" + std::to_string(i), i < 3 ? "bad" : "{}",
              "refunds");
  }
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  auto* orders = counts_of(m, "orders");
  auto* refunds = counts_of(m, "refunds");
  BOOST_REQUIRE(orders != nullptr);
  BOOST_REQUIRE(refunds != nullptr);
  BOOST_TEST((*orders)[topic_counter::received] == 30u);
  BOOST_TEST((*orders)[topic_counter::acked] == 30u);
  BOOST_TEST((*orders)[topic_counter::deduped] == 1u);
  BOOST_TEST((*orders)[topic_counter::retried] == 0u);
  BOOST_TEST((*orders)[topic_counter::handler_errors] == 0u);
  BOOST_TEST((*refunds)[topic_counter::received] == 12u + 9u); // 9 redelivered once
  BOOST_TEST((*refunds)[topic_counter::handler_errors] == 9u);
  BOOST_TEST((*refunds)[topic_counter::retried] == 9u);
  BOOST_TEST((*refunds)[topic_counter::acked] == 9u);
  BOOST_TEST((*refunds)[topic_counter::dead_lettered] == 3u);
  BOOST_TEST((*refunds)[topic_counter::deduped] == 0u);
  // The totals are the sums over the topics.
  std::uint64_t acked = 0, retried = 0, dead = 0, received = 0, errors = 0;
  for (const auto& t : m.topics) {
    acked += t[topic_counter::acked];
    retried += t[topic_counter::retried];
    dead += t[topic_counter::dead_lettered];
    received += t[topic_counter::received];
    errors += t[topic_counter::handler_errors];
  }
  BOOST_TEST(acked == m.acked);
  BOOST_TEST(retried == m.retried);
  BOOST_TEST(dead == m.dead_lettered);
  BOOST_TEST(received == m.received());
  BOOST_TEST(errors == m.handler_errors);
}

BOOST_AUTO_TEST_CASE(a_timeout_is_counted_on_its_topic) {
  engine_harness h;
  h.cfg.engine.handler_timeout = 100ms;
  h.handlers.add("slow", [](const envelope&, handler_context& ctx) {
    if (ctx.attempt == 1) {
      std::this_thread::sleep_for(300ms);
    }
    return outcome::ok();
  });
  h.handlers.add("orders", [](const envelope&, handler_context&) { return outcome::ok(); });
  h.publish("s-1", "sk-1", "{}", "slow");
  h.publish_many(5, "orders");
  h.start();
  BOOST_REQUIRE(h.run_to_end(10000ms));
  auto m = h.finish();
  BOOST_REQUIRE(counts_of(m, "slow") != nullptr);
  BOOST_TEST((*counts_of(m, "slow"))[topic_counter::timeouts] == 1u);
  BOOST_TEST((*counts_of(m, "orders"))[topic_counter::timeouts] == 0u);
  BOOST_TEST(m.timeouts == 1u);
}

BOOST_AUTO_TEST_CASE(stale_acks_reported_twice_or_out_of_order_fence_each_message_once) {
  // A transport that retried part of an ack can name a stale delivery twice
  // and out of order (SQS's batch delete does): each stale message is fenced
  // once, and no other message loses its ack.
  struct repeating_stale final : forwarding_transport {
    using forwarding_transport::forwarding_transport;
    std::atomic<bool> reported{false};
    io_result ack_checked(const std::vector<const envelope*>& batch,
                          std::vector<std::size_t>& stale) override {
      auto r = forwarding_transport::ack(batch);
      if (r && batch.size() >= 3 && !reported.exchange(true)) {
        stale = {2, 0, 2};
      }
      return r;
    }
  };
  engine_harness h;
  auto& calls = h.ack_and_count();
  h.seen_transport = std::make_shared<repeating_stale>(h.transport, false);
  h.publish_many(100);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 100);
  BOOST_TEST(m.fenced == 2u);
  BOOST_TEST(m.acked == 98u);
  BOOST_REQUIRE(counts_of(m, "orders") != nullptr);
  BOOST_TEST((*counts_of(m, "orders"))[topic_counter::fenced] == 2u);
  BOOST_TEST((*counts_of(m, "orders"))[topic_counter::acked] == 98u);
}
