#define BOOST_TEST_MODULE batch_handler
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/engine_harness.hpp"
#include "tests/support/eventually.hpp"

// Batch handlers through the engine on the memory transport: partial
// failures, whole-batch failures, the limits, timeouts and key order.

using namespace mailroom;
using namespace mailroom::testing;

namespace {

// What a batch handler saw: every call's ids, in order.
struct batch_log {
  void saw(const std::vector<const envelope*>& batch) {
    std::lock_guard<std::mutex> guard{mutex};
    std::vector<std::string> ids;
    for (const auto* m : batch) {
      ids.push_back(m->id);
      ++runs[m->id];
    }
    calls.push_back(std::move(ids));
  }
  std::size_t largest() {
    std::lock_guard<std::mutex> guard{mutex};
    std::size_t n = 0;
    for (const auto& c : calls) {
      n = std::max(n, c.size());
    }
    return n;
  }
  std::mutex mutex;
  std::vector<std::vector<std::string>> calls;
  std::map<std::string, int> runs;
};

int number_of(const std::string& id) { return std::stoi(id.substr(id.find('-') + 1)); }

// Registers an "orders" batch handler that acks every item and logs its calls.
void acks_and_logs(engine_harness& h, batch_log& log, batch_limits limits) {
  h.handlers.add_batch(
      "orders",
      [&log](const std::vector<const envelope*>& batch, handler_context&) {
        log.saw(batch);
        return std::vector<batch_item_failure>{};
      },
      limits);
}

} // namespace

BOOST_AUTO_TEST_CASE(only_the_failed_items_are_retried) {
  engine_harness h;
  batch_log log;
  h.handlers.add_batch(
      "orders",
      [&](const std::vector<const envelope*>& batch, handler_context&) {
        log.saw(batch);
        std::vector<batch_item_failure> failed;
        for (const auto* m : batch) {
          if (number_of(m->id) % 2 == 0 && m->attempt == 1) {
            failed.push_back({m->id, outcome::retry("even, first time")});
          }
        }
        return failed;
      },
      batch_limits{8, 100ms});
  h.publish_many(40);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.acked == 40u);
  BOOST_TEST(m.retried == 20u);
  BOOST_TEST(m.dead_lettered == 0u);
  BOOST_TEST(log.largest() <= 8u);
  for (int i = 0; i < 40; ++i) {
    BOOST_TEST(log.runs["m-" + std::to_string(i)] == (i % 2 == 0 ? 2 : 1), i);
  }
}

BOOST_AUTO_TEST_CASE(the_window_gathers_full_batches) {
  engine_harness h;
  h.cfg.engine.workers = 1;
  batch_log log;
  // A long window: a loaded sanitizer run closed a 500 ms window once.
  acks_and_logs(h, log, batch_limits{5, 3000ms});
  h.publish_many(20);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.acked == 20u);
  BOOST_REQUIRE(log.calls.size() == 4u); // 20 in calls of exactly 5
  for (const auto& c : log.calls) {
    BOOST_TEST(c.size() == 5u);
  }
}

BOOST_AUTO_TEST_CASE(a_stop_does_not_wait_for_a_batch_window) {
  // A lane gathering a batch in a 30 s window when the engine stops: the
  // stop returns within the drain, not when the window closes, and what the
  // lane held never ran (it goes back unsettled, for the next delivery).
  engine_harness h;
  h.cfg.engine.workers = 1;
  batch_log log;
  acks_and_logs(h, log, batch_limits{100, 30000ms});
  h.publish_many(3);
  h.start();
  std::this_thread::sleep_for(300ms); // the lane took the 3 and waits for more
  auto t0 = std::chrono::steady_clock::now();
  auto m = h.finish();
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 10s));
  BOOST_TEST(log.calls.empty());
  BOOST_TEST(m.acked == 0u);
}

BOOST_AUTO_TEST_CASE(a_unit_past_one_batch_is_topped_up_to_whole_batches) {
  // After a first call the lane knows the handler's cost and takes units
  // larger than one batch. A unit of 7 then waits in its window for 3 more
  // instead of calling with 5 and then a short 2.
  engine_harness h;
  h.cfg.engine.workers = 1;
  batch_log log;
  acks_and_logs(h, log, batch_limits{5, 3000ms});
  auto publish_range = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      h.publish("m-" + std::to_string(i), "k-" + std::to_string(i), "{}");
    }
  };
  publish_range(0, 5);
  h.start();
  BOOST_REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> guard{log.mutex};
    return log.calls.size() == 1;
  }));
  publish_range(5, 12);
  std::this_thread::sleep_for(300ms); // the lane has taken the 7 by now
  publish_range(12, 20);
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.acked == 20u);
  BOOST_REQUIRE(log.calls.size() == 4u);
  for (const auto& c : log.calls) {
    BOOST_TEST(c.size() == 5u);
  }
}

BOOST_AUTO_TEST_CASE(dead_letter_failures_go_to_the_dlq_with_their_reason) {
  engine_harness h;
  h.handlers.add_batch("orders", [&](const std::vector<const envelope*>& batch,
                                     handler_context&) {
    std::vector<batch_item_failure> failed;
    for (const auto* m : batch) {
      if (m->id == "m-3") {
        failed.push_back({m->id, outcome::dead_letter("malformed order")});
      }
    }
    return failed;
  });
  h.publish_many(10);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.acked == 9u);
  BOOST_TEST(m.dead_lettered == 1u);
  auto dlq = h.transport->dead_letters();
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].message.id == "m-3");
  BOOST_TEST(dlq[0].record.reason == "malformed order");
}

BOOST_AUTO_TEST_CASE(an_exception_fails_the_whole_batch_each_item_spending_its_budget) {
  engine_harness h;
  h.cfg.retry.max_attempts = 2;
  h.cfg.engine.workers = 1; // the first call is the first in the log
  batch_log log;
  std::atomic<int> calls{0};
  h.handlers.add_batch(
      "orders",
      [&](const std::vector<const envelope*>& batch,
          handler_context&) -> std::vector<batch_item_failure> {
        log.saw(batch);
        if (++calls == 1) {
          throw std::runtime_error("database down");
        }
        return {};
      },
      batch_limits{50, 200ms});
  h.publish_many(10);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.handler_errors == 1u);
  BOOST_TEST(m.retried == log.calls.front().size()); // every item of the failed call
  BOOST_TEST(m.acked == 10u);
}

BOOST_AUTO_TEST_CASE(a_failure_naming_an_item_not_in_the_batch_is_ignored) {
  engine_harness h;
  h.handlers.add_batch("orders", [&](const std::vector<const envelope*>&, handler_context&) {
    return std::vector<batch_item_failure>{{"no-such-item", outcome::retry("?")}};
  });
  h.publish_many(6);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.acked == 6u);
  BOOST_TEST(m.retried == 0u);
}

BOOST_AUTO_TEST_CASE(a_timeout_fails_the_whole_batch) {
  engine_harness h;
  h.cfg.engine.handler_timeout = 300ms;
  h.cfg.engine.workers = 1;
  batch_log log;
  std::atomic<int> calls{0};
  std::atomic<bool> timed_out_call_done{false};
  h.handlers.add_batch(
      "orders",
      [&](const std::vector<const envelope*>& batch, handler_context& ctx) {
        log.saw(batch);
        if (++calls == 1) {
          while (!ctx.is_cancelled()) {
            std::this_thread::sleep_for(5ms);
          }
          timed_out_call_done = true;
        }
        return std::vector<batch_item_failure>{};
      },
      batch_limits{4, 200ms});
  h.publish_many(4);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  // The abandoned call reads this frame's variables until it lets go.
  BOOST_TEST(eventually([&] { return timed_out_call_done.load(); }, 5000ms));
  std::this_thread::sleep_for(20ms);
  auto m = h.finish();
  BOOST_TEST(m.timeouts == 1u);
  BOOST_TEST(m.retried == log.calls.front().size());
  BOOST_TEST(m.acked == 4u);
  for (const auto& [id, runs] : log.runs) {
    BOOST_TEST(runs == 2, id); // each timed out once, then ran again
  }
}

BOOST_AUTO_TEST_CASE(a_batch_never_holds_a_key_out_of_order) {
  engine_harness h;
  h.cfg.engine.ordering = ordering_mode::per_key;
  std::mutex mu;
  std::vector<std::vector<std::pair<int, std::uint32_t>>> calls; // (number, attempt)
  std::atomic<int> behind_a_failure{0};
  h.handlers.add_batch(
      "orders",
      [&](const std::vector<const envelope*>& batch, handler_context&) {
        std::vector<batch_item_failure> failed;
        std::vector<std::pair<int, std::uint32_t>> seen;
        std::set<std::string> failed_keys;
        for (const auto* m : batch) {
          seen.emplace_back(number_of(m->id), m->attempt);
          if (failed_keys.count(m->ordering_key) != 0) {
            ++behind_a_failure;
          }
          if (m->attempt == 1 && number_of(m->id) % 7 == 3) {
            failed.push_back({m->id, outcome::retry("once")});
            failed_keys.insert(m->ordering_key);
          }
        }
        std::lock_guard<std::mutex> guard{mu};
        calls.push_back(std::move(seen));
        return failed;
      },
      batch_limits{16, 50ms});
  // 60 messages on 4 keys, each key's in publish order m-<i>.
  for (int i = 0; i < 60; ++i) {
    envelope m;
    m.id = "m-" + std::to_string(i);
    m.key = m.id;
    m.ordering_key = "key-" + std::to_string(i % 4);
    m.topic = "orders";
    m.payload = "{}";
    BOOST_REQUIRE(static_cast<bool>(h.transport->publish(std::move(m))));
  }
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.acked == 60u);
  // First deliveries of a key come in publish order within every call.
  for (const auto& call : calls) {
    std::map<int, int> last_of_key;
    for (auto [n, attempt] : call) {
      if (attempt != 1) {
        continue;
      }
      auto [it, fresh] = last_of_key.emplace(n % 4, n);
      BOOST_TEST((fresh || it->second < n), "m-" << n << " after m-" << it->second);
      it->second = n;
    }
  }
  // What ran behind a failed item of its key went back with it, unspent.
  BOOST_TEST(m.deferred >= static_cast<std::uint64_t>(behind_a_failure.load()));
}
