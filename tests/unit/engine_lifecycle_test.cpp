#define BOOST_TEST_MODULE engine_lifecycle
#include <boost/test/unit_test.hpp>

#include <map>
#include <mutex>
#include <random>

#include "tests/support/engine_harness.hpp"

using namespace mailroom;
using namespace mailroom::testing;

BOOST_AUTO_TEST_CASE(per_key_order_holds_under_concurrency) {
  engine_harness h;
  h.cfg.engine.ordering = ordering_mode::per_key;
  h.cfg.engine.workers = 8;
  std::mutex mu;
  std::map<std::string, std::vector<int>> seen;
  std::atomic<int> concurrent{0}, most_concurrent{0};
  h.handlers.add("orders", [&](const envelope& m, handler_context&) {
    auto now = ++concurrent;
    auto prev = most_concurrent.load();
    while (now > prev && !most_concurrent.compare_exchange_weak(prev, now)) {
    }
    thread_local std::minstd_rand rng{std::random_device{}()};
    std::this_thread::sleep_for(std::chrono::microseconds{rng() % 300});
    {
      std::lock_guard<std::mutex> g{mu};
      seen[m.ordering_key].push_back(std::stoi(m.payload));
    }
    --concurrent;
    return outcome::ok();
  });
  const int keys = 40, per_key = 30;
  for (int i = 0; i < per_key; ++i) {
    for (int k = 0; k < keys; ++k) {
      envelope m;
      m.id = "m-" + std::to_string(k) + "-" + std::to_string(i);
      m.key = m.id;
      m.ordering_key = "customer-" + std::to_string(k);
      m.topic = "orders";
      m.payload = std::to_string(i);
      BOOST_REQUIRE(bool(h.transport->publish(std::move(m))));
    }
  }
  h.start();
  BOOST_REQUIRE(h.run_to_end(30000ms));
  auto m = h.finish();
  BOOST_TEST(m.acked == static_cast<std::uint64_t>(keys * per_key));
  BOOST_TEST(seen.size() == static_cast<std::size_t>(keys));
  for (auto& [key, order] : seen) {
    BOOST_REQUIRE(order.size() == static_cast<std::size_t>(per_key));
    for (int i = 0; i < per_key; ++i) {
      BOOST_TEST(order[i] == i, key);
    }
  }
  // Different keys did run in parallel.
  BOOST_TEST(most_concurrent.load() > 1);
}

BOOST_AUTO_TEST_CASE(in_flight_never_exceeds_the_budget) {
  engine_harness h;
  h.cfg.engine.max_in_flight = 64;
  h.cfg.engine.batch_size = 50;
  h.cfg.engine.workers = 8;
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    std::this_thread::sleep_for(std::chrono::microseconds{100});
    return outcome::ok();
  });
  h.publish_many(4000);
  h.start();
  std::atomic<bool> done{false};
  std::int64_t most = 0;
  std::uint64_t samples = 0;
  std::thread sampler([&] {
    while (!done.load()) {
      auto in_transport = static_cast<std::int64_t>(h.transport->stats().in_flight);
      most = std::max({most, h.eng->metrics().in_flight, in_transport});
      ++samples;
      std::this_thread::sleep_for(std::chrono::microseconds{200});
    }
  });
  bool ended = h.run_to_end(30000ms);
  done = true;
  sampler.join();
  BOOST_REQUIRE(ended);
  auto m = h.finish();
  BOOST_TEST(m.acked == 4000u);
  BOOST_TEST(samples > 100u);
  BOOST_TEST(most <= 64);
  BOOST_TEST(most > 0);
  BOOST_TEST(m.in_flight_peak <= 64);
}

BOOST_AUTO_TEST_CASE(sweeper_recovers_a_claimed_then_abandoned_message) {
  // A previous owner polled the message, claimed it and wrote its dispatch
  // marker, then vanished. The transport will not redeliver it for a minute;
  // the sweeper must find the expired claim and finish the work.
  engine_harness h{60000ms};
  h.cfg.dedupe.claim_ttl = 100ms;
  h.publish_many(1);
  envelope_batch polled;
  BOOST_REQUIRE(h.transport->poll(1, 0ms, polled));
  BOOST_REQUIRE(polled.size() == 1u);
  // It claimed and recorded under the topic-scoped key, as every owner does.
  auto key = dedupe_key(polled[0], dedupe_scope::topic);
  std::vector<std::string_view> keys{key};
  auto token = h.store->claim(keys, 100ms)[0].token;
  auto now = clock::now();
  BOOST_REQUIRE(bool(h.claims->record_dispatch({{polled[0], token, now, now + 100ms, key}})));
  h.transport->close_input();

  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    calls++;
    return outcome::ok();
  });
  h.start();
  BOOST_REQUIRE(h.eng->wait_for(10000ms));
  auto m = h.finish();
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(m.recovered >= 1u);
  BOOST_TEST(m.acked == 1u);
  BOOST_TEST(h.transport->stats().acked == 1u);
  BOOST_TEST(h.claims->pending() == 0u);
  BOOST_TEST(m.sweeps >= 1u);
}

BOOST_AUTO_TEST_CASE(sweep_summary_reports_found_recovered_and_errors) {
  engine_harness h;
  h.cfg.sweeper.interval = 20ms;
  h.handlers.add("orders",
                 [](const envelope&, handler_context&) { return outcome::ok(); });
  h.claims->set_available(false);
  h.start();
  BOOST_REQUIRE(eventually([&] { return h.eng->last_sweep().transient_errors >= 2; }));
  auto s = h.eng->last_sweep();
  BOOST_TEST(s.found == 0u);
  BOOST_TEST(s.recovered == 0u);
  BOOST_TEST(!s.errors.empty());
  BOOST_TEST(s.errors.size() <= 8u);
  h.claims->set_available(true);
  BOOST_REQUIRE(eventually([&] { return h.eng->last_sweep().transient_errors == 0; }));
}

BOOST_AUTO_TEST_CASE(drain_under_load_ends_within_the_deadline_and_loses_nothing) {
  engine_harness h;
  h.cfg.engine.drain_timeout = 300ms;
  h.cfg.engine.workers = 4;
  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope& m, handler_context& ctx) {
    calls++;
    if (m.id == "m-3") {
      // A handler that ignores cancellation must not hold up the drain.
      std::this_thread::sleep_for(5000ms);
    }
    (void)ctx;
    std::this_thread::sleep_for(1ms);
    return outcome::ok();
  });
  h.publish_many(5000);
  h.start();
  BOOST_REQUIRE(eventually([&] { return h.eng->metrics().acked >= 100; }));
  auto t0 = clock::now();
  auto exit = h.eng->stop();
  auto took = clock::now() - t0;
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(took).count() < 3800);
  auto m = h.eng->metrics();
  auto s = h.transport->stats();
  BOOST_TEST(m.in_flight == 0);
  // Every message is either acked or back in the transport for redelivery.
  BOOST_TEST(s.in_flight == 0u);
  BOOST_TEST(s.acked + s.ready + s.delayed == 5000u);
  BOOST_TEST(s.acked == m.acked);
  BOOST_TEST(!exit.drained);
  BOOST_TEST(exit.handed_back >= 1u);
}

BOOST_AUTO_TEST_CASE(a_quiet_drain_finishes_in_flight_work) {
  engine_harness h;
  h.cfg.engine.drain_timeout = 5000ms;
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    std::this_thread::sleep_for(20ms);
    return outcome::ok();
  });
  h.publish_many(200);
  h.start();
  BOOST_REQUIRE(eventually([&] { return h.eng->metrics().acked >= 10; }));
  auto exit = h.eng->stop();
  auto m = h.eng->metrics();
  BOOST_TEST(exit.drained);
  BOOST_TEST(m.in_flight == 0);
  BOOST_TEST(m.deferred == 0u); // nothing had to be handed back
  auto s = h.transport->stats();
  BOOST_TEST(s.acked + s.ready == 200u);
  BOOST_TEST(s.acked == m.acked);
}

BOOST_AUTO_TEST_CASE(a_crashed_worker_is_restarted_and_nothing_is_lost) {
  engine_harness h;
  h.cfg.engine.workers = 2;
  h.cfg.engine.restart_backoff_base = 10ms;
  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    calls++;
    std::this_thread::sleep_for(std::chrono::microseconds{200});
    return outcome::ok();
  });
  h.publish_many(3000);
  h.start();
  BOOST_REQUIRE(eventually([&] { return h.eng->metrics().acked >= 200; }));
  h.eng->inject_worker_crash(0);
  h.eng->inject_worker_crash(1);
  BOOST_REQUIRE(eventually([&] { return h.eng->metrics().restarts >= 2; }));
  h.eng->inject_worker_crash(0);
  BOOST_REQUIRE(h.run_to_end(30000ms));
  auto m = h.finish();
  BOOST_TEST(m.restarts >= 3u);
  BOOST_TEST(m.acked == 3000u);
  BOOST_TEST(calls.load() == 3000);
  BOOST_TEST(h.transport->stats().acked == 3000u);
}

BOOST_AUTO_TEST_CASE(visibility_timeout_redelivers_what_was_never_settled) {
  // With the engine stopped mid-handler and the hand-back impossible (the
  // handler never returns within the grace), the transport's visibility
  // timeout is what brings the message back to a new engine.
  engine_harness h{200ms};
  h.publish_many(1);
  envelope_batch polled;
  BOOST_REQUIRE(h.transport->poll(1, 0ms, polled)); // an owner that dies
  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope&, handler_context& ctx) {
    calls++;
    BOOST_TEST(ctx.attempt == 2u);
    return outcome::ok();
  });
  h.start(false);
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(h.transport->stats().redelivered_by_timeout == 1u);
  BOOST_TEST(m.acked == 1u);
}

BOOST_AUTO_TEST_CASE(a_child_that_fails_the_same_way_on_every_restart_ends_the_run) {
  // A poll that throws every time (as a bad allocation size did) used to
  // restart the poller every 5 s for ever, processing nothing.
  struct throwing_transport final : forwarding_transport {
    using forwarding_transport::forwarding_transport;
    io_result poll(std::size_t, std::chrono::milliseconds, envelope_batch&) override {
      throw std::length_error("cannot create std::vector larger than max_size()");
    }
  };
  auto inner = std::make_shared<memory_transport>();
  engine_config cfg = scaled_down_config();
  cfg.engine.restart_backoff_base = 1ms;
  cfg.engine.restart_backoff_cap = 5ms;
  engine_parts parts;
  parts.transport = std::make_shared<throwing_transport>(inner, false);
  parts.handlers.add("orders", [](const envelope&, handler_context&) { return outcome::ok(); });
  engine e{cfg, std::move(parts)};
  e.start();
  BOOST_REQUIRE(e.wait_for(10000ms)); // stopped by itself
  auto exit = e.stop();
  BOOST_TEST(exit.failure.find("poller 0 stopped 5 times in a row") != std::string::npos,
             exit.failure);
  BOOST_TEST(e.metrics().restarts == 4u);
}
