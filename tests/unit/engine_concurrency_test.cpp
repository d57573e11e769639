#define BOOST_TEST_MODULE engine_concurrency
#include <boost/test/unit_test.hpp>

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "tests/support/engine_harness.hpp"
#include "tests/support/timer_thread.hpp"

using namespace mailroom;
using namespace mailroom::testing;

namespace {

// Tracks how many handler calls run at once.
struct concurrency_meter {
  std::atomic<int> now{0};
  std::atomic<int> most{0};
  void enter() {
    auto n = ++now;
    auto prev = most.load();
    while (n > prev && !most.compare_exchange_weak(prev, n)) {
    }
  }
  void leave() { --now; }
};

double seconds_since(clock::time_point t) {
  return std::chrono::duration<double>(clock::now() - t).count();
}

} // namespace

BOOST_AUTO_TEST_CASE(slow_blocking_handlers_run_one_per_worker_at_once) {
  // 8 messages of a 1 s handler on 8 workers: the old design ran a poll
  // batch serially on one lane (8 s); now they run side by side.
  engine_harness h;
  h.cfg.engine.workers = 8;
  h.cfg.engine.handler_timeout = 5000ms;
  concurrency_meter meter;
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    meter.enter();
    std::this_thread::sleep_for(1000ms);
    meter.leave();
    return outcome::ok();
  });
  h.publish_many(8);
  auto t0 = clock::now();
  h.start();
  BOOST_REQUIRE(h.run_to_end(20000ms));
  auto took = seconds_since(t0);
  auto m = h.finish();
  BOOST_TEST(m.acked == 8u);
  BOOST_TEST(took < 4.0);
  BOOST_TEST(meter.most.load() == 8);
}

BOOST_AUTO_TEST_CASE(a_fast_message_is_settled_while_a_slow_one_still_runs) {
  // Settling follows each message, not the batch it was polled in.
  engine_harness h;
  h.cfg.engine.workers = 2;
  std::atomic<bool> slow_running{false}, release_slow{false};
  h.handlers.add("orders", [&](const envelope& m, handler_context&) {
    if (m.id == "m-0") {
      slow_running = true;
      while (!release_slow.load()) {
        std::this_thread::sleep_for(1ms);
      }
    }
    return outcome::ok();
  });
  h.publish_many(50);
  h.start();
  BOOST_REQUIRE(eventually([&] { return slow_running.load(); }));
  // Every other message is acked while m-0's handler has not returned.
  BOOST_TEST(eventually([&] { return h.transport->stats().acked == 49u; }));
  BOOST_TEST(slow_running.load());
  release_slow = true;
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.acked == 50u);
}

BOOST_AUTO_TEST_CASE(a_new_slow_topic_does_not_hold_messages_behind_a_fast_one) {
  // A fast topic teaches the lanes large units; a slow topic mixed in must
  // still run one message per lane, not a unit's worth on one lane.
  engine_harness h;
  h.cfg.engine.workers = 8;
  h.cfg.engine.handler_timeout = 5000ms;
  concurrency_meter meter;
  h.handlers.add("audit", [](const envelope&, handler_context&) { return outcome::ok(); });
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    meter.enter();
    std::this_thread::sleep_for(500ms);
    meter.leave();
    return outcome::ok();
  });
  for (int i = 0; i < 200; ++i) {
    h.publish("a-" + std::to_string(i), "ka-" + std::to_string(i), "{}", "audit");
  }
  for (int i = 0; i < 8; ++i) {
    h.publish("o-" + std::to_string(i), "ko-" + std::to_string(i), "{}", "orders");
  }
  auto t0 = clock::now();
  h.start();
  BOOST_REQUIRE(h.run_to_end(20000ms));
  auto took = seconds_since(t0);
  auto m = h.finish();
  BOOST_TEST(m.acked == 208u);
  BOOST_TEST(took < 2.0); // serial would be 4 s
  BOOST_TEST(meter.most.load() >= 4);
}

BOOST_AUTO_TEST_CASE(per_key_order_holds_with_slow_handlers) {
  engine_harness h;
  h.cfg.engine.ordering = ordering_mode::per_key;
  h.cfg.engine.workers = 6;
  std::mutex mu;
  std::map<std::string, std::vector<int>> seen;
  std::set<std::string> running_keys;
  bool key_ran_twice_at_once = false;
  concurrency_meter meter;
  h.handlers.add("orders", [&](const envelope& m, handler_context&) {
    {
      std::lock_guard<std::mutex> g{mu};
      key_ran_twice_at_once |= !running_keys.insert(m.ordering_key).second;
    }
    meter.enter();
    std::this_thread::sleep_for(20ms);
    meter.leave();
    std::lock_guard<std::mutex> g{mu};
    running_keys.erase(m.ordering_key);
    seen[m.ordering_key].push_back(std::stoi(m.payload));
    return outcome::ok();
  });
  const int keys = 6, per_key = 8;
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
  auto t0 = clock::now();
  h.start();
  BOOST_REQUIRE(h.run_to_end(20000ms));
  auto took = seconds_since(t0);
  auto m = h.finish();
  BOOST_TEST(m.acked == static_cast<std::uint64_t>(keys * per_key));
  BOOST_TEST(!key_ran_twice_at_once);
  for (auto& [key, order] : seen) {
    BOOST_REQUIRE(order.size() == static_cast<std::size_t>(per_key));
    for (int i = 0; i < per_key; ++i) {
      BOOST_TEST(order[i] == i, key);
    }
  }
  // Six keys on six workers ran side by side: 8 x 20 ms each, not 48 x 20 ms.
  BOOST_TEST(meter.most.load() >= 3);
  BOOST_TEST(took < 0.9);
}

BOOST_AUTO_TEST_CASE(async_handlers_hold_many_messages_in_flight_on_few_lanes) {
  // 2000 messages whose handler completes 50 ms later from another thread,
  // max_in_flight 1000, 2 workers: about 2 x 50 ms of waiting in all, not
  // 2000 x 50 ms / 2 = 50 s.
  engine_harness h;
  h.cfg.engine.workers = 2;
  h.cfg.engine.max_in_flight = 1000;
  h.cfg.engine.batch_size = 256;
  timer_thread timers;
  std::atomic<int> started{0}, most_pending{0};
  std::atomic<int> pending{0};
  h.handlers.add_async("orders", [&](const envelope& m, handler_context&, completion done) {
    ++started;
    auto now = ++pending;
    auto prev = most_pending.load();
    while (now > prev && !most_pending.compare_exchange_weak(prev, now)) {
    }
    auto id = m.id; // the envelope is ours only until done() is called
    timers.after(50ms, [&pending, done, id] {
      --pending;
      done(id.empty() ? outcome::retry("no id") : outcome::ok());
    });
  });
  h.publish_many(2000);
  auto t0 = clock::now();
  h.start();
  BOOST_REQUIRE(h.run_to_end(30000ms));
  auto took = seconds_since(t0);
  auto m = h.finish();
  BOOST_TEST(m.acked == 2000u);
  BOOST_TEST(started.load() == 2000);
  BOOST_TEST(m.timeouts == 0u);
  BOOST_TEST(most_pending.load() > 500); // far more than one per lane
  BOOST_TEST(most_pending.load() <= 1000);
  BOOST_TEST(took < 3.0);
  BOOST_TEST(m.in_flight_peak <= 1000);
}

BOOST_AUTO_TEST_CASE(a_second_completion_is_ignored_and_counted) {
  engine_harness h;
  h.handlers.add_async("orders", [](const envelope&, handler_context&, completion done) {
    BOOST_TEST(done(outcome::ok()));
    BOOST_TEST(!done(outcome::dead_letter("second call")));
  });
  h.publish_many(10);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.acked == 10u);
  BOOST_TEST(m.dead_lettered == 0u);
  BOOST_TEST(m.duplicate_completions == 10u);
}

BOOST_AUTO_TEST_CASE(a_completion_never_called_times_out_into_a_retry) {
  engine_harness h;
  h.cfg.engine.handler_timeout = 100ms;
  h.cfg.dedupe.claim_ttl = 5000ms;
  h.cfg.retry.max_attempts = 5;
  std::mutex mu;
  std::vector<completion> kept; // held, never called on attempt 1
  h.handlers.add_async("orders",
                       [&](const envelope&, handler_context& ctx, completion done) {
                         if (ctx.attempt == 1) {
                           std::lock_guard<std::mutex> g{mu};
                           kept.push_back(done);
                           return;
                         }
                         done(outcome::ok());
                       });
  h.publish_many(5);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.timeouts == 5u);
  BOOST_TEST(m.retried == 5u);
  BOOST_TEST(m.acked == 5u);
  // A completion after the timeout is ignored and counted as late.
  for (auto& done : kept) {
    BOOST_TEST(done.cancelled());
    BOOST_TEST(!done(outcome::ok()));
  }
  BOOST_TEST(h.eng->metrics().late_completions == 5u);
  BOOST_TEST(h.transport->stats().acked == 5u);
}

BOOST_AUTO_TEST_CASE(an_async_handler_that_throws_is_retried) {
  engine_harness h;
  h.handlers.add_async("orders",
                       [](const envelope&, handler_context& ctx, completion done) {
                         if (ctx.attempt == 1) {
                           throw std::runtime_error("client refused");
                         }
                         done(outcome::ok());
                       });
  h.publish_many(20);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.handler_errors == 20u);
  BOOST_TEST(m.retried == 20u);
  BOOST_TEST(m.acked == 20u);
}

BOOST_AUTO_TEST_CASE(async_per_key_order_waits_for_each_completion) {
  engine_harness h;
  h.cfg.engine.ordering = ordering_mode::per_key;
  h.cfg.engine.workers = 2;
  timer_thread timers;
  std::mutex mu;
  std::map<std::string, std::vector<int>> completed;
  std::map<std::string, int> open_calls;
  bool overlap = false;
  h.handlers.add_async("orders", [&](const envelope& m, handler_context&, completion done) {
    auto key = m.ordering_key;
    auto n = std::stoi(m.payload);
    {
      std::lock_guard<std::mutex> g{mu};
      overlap |= open_calls[key]++ > 0;
    }
    timers.after(5ms, [&, key, n, done] {
      {
        std::lock_guard<std::mutex> g{mu};
        --open_calls[key];
        completed[key].push_back(n);
      }
      done(outcome::ok());
    });
  });
  for (int i = 0; i < 10; ++i) {
    for (int k = 0; k < 5; ++k) {
      envelope m;
      m.id = "m-" + std::to_string(k) + "-" + std::to_string(i);
      m.key = m.id;
      m.ordering_key = "k" + std::to_string(k);
      m.topic = "orders";
      m.payload = std::to_string(i);
      BOOST_REQUIRE(bool(h.transport->publish(std::move(m))));
    }
  }
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.acked == 50u);
  BOOST_TEST(!overlap);
  for (auto& [key, order] : completed) {
    BOOST_REQUIRE(order.size() == 10u);
    for (int i = 0; i < 10; ++i) {
      BOOST_TEST(order[i] == i, key);
    }
  }
}

BOOST_AUTO_TEST_CASE(slow_work_is_never_redelivered_while_the_engine_holds_it) {
  // Visibility 300 ms, 60 messages of 100 ms on 2 workers (3 s of work):
  // without lease renewal most would time out in the queue and be
  // delivered again.
  engine_harness h{300ms};
  h.cfg.engine.workers = 2;
  h.cfg.engine.max_in_flight = 64;
  h.cfg.dedupe.enabled = false;
  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    calls++;
    std::this_thread::sleep_for(100ms);
    return outcome::ok();
  });
  h.publish_many(60);
  h.start(false);
  BOOST_REQUIRE(h.run_to_end(30000ms));
  auto m = h.finish();
  auto s = h.transport->stats();
  BOOST_TEST(calls.load() == 60);
  BOOST_TEST(m.polled == 60u); // polled == messages + retries (none)
  BOOST_TEST(s.delivered == 60u);
  BOOST_TEST(s.redelivered_by_timeout == 0u);
  BOOST_TEST(m.acked == 60u);
  BOOST_TEST(m.fenced == 0u);
}

BOOST_AUTO_TEST_CASE(a_handler_longer_than_the_visibility_timeout_keeps_its_delivery) {
  // One handler runs 4x the visibility timeout; the lease keeper renews it.
  engine_harness h{250ms};
  h.cfg.engine.handler_timeout = 3000ms;
  std::atomic<int> calls{0};
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    calls++;
    std::this_thread::sleep_for(1000ms);
    return outcome::ok();
  });
  h.publish_many(1);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(h.transport->stats().redelivered_by_timeout == 0u);
  BOOST_TEST(h.transport->stats().extended >= 3u);
  BOOST_TEST(m.leases_extended >= 3u);
  BOOST_TEST(m.acked == 1u);
}

BOOST_AUTO_TEST_CASE(the_drain_hands_back_async_work_still_pending) {
  engine_harness h;
  h.cfg.engine.drain_timeout = 200ms;
  std::mutex mu;
  std::vector<completion> kept;
  std::atomic<int> calls{0};
  h.handlers.add_async("orders", [&](const envelope&, handler_context&, completion done) {
    calls++;
    std::lock_guard<std::mutex> g{mu};
    kept.push_back(done); // completes only after the engine stopped
  });
  h.publish_many(100);
  h.start();
  BOOST_REQUIRE(eventually([&] { return calls.load() >= 100; }));
  auto t0 = clock::now();
  auto exit = h.eng->stop();
  BOOST_TEST(seconds_since(t0) < 3.0);
  BOOST_TEST(!exit.drained);
  BOOST_TEST(exit.handed_back == 100u);
  auto m = h.eng->metrics();
  BOOST_TEST(m.in_flight == 0);
  BOOST_TEST(m.deferred == 100u);
  auto s = h.transport->stats();
  BOOST_TEST(s.in_flight == 0u);
  BOOST_TEST(s.ready == 100u); // every message back in the transport
  std::lock_guard<std::mutex> g{mu};
  for (auto& done : kept) {
    BOOST_TEST(!done(outcome::ok()));
  }
  BOOST_TEST(h.eng->metrics().late_completions == 100u);
  BOOST_TEST(h.transport->stats().acked == 0u);
}

BOOST_AUTO_TEST_CASE(gauges_tell_running_from_waiting) {
  engine_harness h;
  h.cfg.engine.workers = 2;
  std::atomic<bool> release{false};
  h.handlers.add("orders", [&](const envelope&, handler_context&) {
    while (!release.load()) {
      std::this_thread::sleep_for(1ms);
    }
    return outcome::ok();
  });
  h.publish_many(6);
  h.start();
  BOOST_REQUIRE(eventually([&] { return h.eng->metrics().running == 2; }));
  auto m = h.eng->metrics();
  BOOST_TEST(m.running == 2);
  BOOST_TEST(m.waiting + m.running <= m.in_flight);
  BOOST_TEST(m.waiting <= 4);
  release = true;
  BOOST_REQUIRE(h.run_to_end());
  auto end = h.finish();
  BOOST_TEST(end.running == 0);
  BOOST_TEST(end.waiting == 0);
  BOOST_TEST(end.acked == 6u);
}
