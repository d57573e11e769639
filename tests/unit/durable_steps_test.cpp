#define BOOST_TEST_MODULE durable_steps
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/io_retry.hpp"
#include "core/json_step.hpp"
#include "core/step_journal.hpp"
#include "stores/memory/memory_checkpoint_store.hpp"
#include "tests/support/checkpoint_contract.hpp"
#include "tests/support/durable_scenarios.hpp"

using namespace mailroom;
using namespace mailroom::testing;

namespace {

std::shared_ptr<checkpoint_store> memory_store() {
  return std::make_shared<memory_checkpoint_store>();
}

// An io_retry whose pauses are recorded, not slept.
struct recorded_retry {
  explicit recorded_retry(io_retry_settings s = {})
      : retry(s, 42, [this](std::chrono::milliseconds d) { pauses.push_back(d); }) {}
  std::vector<std::chrono::milliseconds> pauses;
  io_retry retry;
};

} // namespace

// ---- the store I/O policy ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(transient_failures_are_retried_three_times_with_bounded_pauses) {
  recorded_retry r;
  int calls = 0, seen = 0;
  auto result = r.retry.run(
      [&] {
        ++calls;
        return io_result::transient("down");
      },
      [&](const io_result&, std::uint32_t) { ++seen; });
  BOOST_TEST(!result);
  BOOST_TEST(calls == 4); // the first try and three retries
  BOOST_TEST(seen == 4);
  BOOST_REQUIRE(r.pauses.size() == 3u);
  BOOST_TEST(r.pauses[0].count() <= 100);
  BOOST_TEST(r.pauses[1].count() <= 200);
  BOOST_TEST(r.pauses[2].count() <= 400);
}

BOOST_AUTO_TEST_CASE(pauses_never_exceed_the_cap) {
  recorded_retry r{io_retry_settings{std::chrono::milliseconds{100},
                                     std::chrono::milliseconds{2000}, 8}};
  (void)r.retry.run([] { return io_result::transient("down"); });
  BOOST_REQUIRE(r.pauses.size() == 8u);
  for (auto p : r.pauses) {
    BOOST_TEST(p.count() <= 2000);
  }
}

BOOST_AUTO_TEST_CASE(a_fatal_failure_is_not_retried) {
  recorded_retry r;
  int calls = 0;
  auto result = r.retry.run([&] {
    ++calls;
    return io_result::fatal("WRONGTYPE");
  });
  BOOST_TEST((result.failure == failure_class::fatal));
  BOOST_TEST(calls == 1);
  BOOST_TEST(r.pauses.empty());
}

BOOST_AUTO_TEST_CASE(a_success_after_a_failure_ends_the_retries) {
  recorded_retry r;
  int calls = 0;
  auto result = r.retry.run(
      [&] { return ++calls < 2 ? io_result::transient("blip") : io_result::success(); });
  BOOST_TEST(static_cast<bool>(result));
  BOOST_TEST(calls == 2);
  BOOST_TEST(r.pauses.size() == 1u);
}

// ---- the checkpoint value and the journal --------------------------------------------

BOOST_AUTO_TEST_CASE(step_values_round_trip_byte_exact) {
  std::string name{"we:ird\0name", 11}, result{"\0\xff:5:", 5};
  char kind = 0;
  std::string n, res;
  BOOST_REQUIRE(decode_step_value(encode_step_value('s', name, result), kind, n, res));
  BOOST_TEST(kind == 's');
  BOOST_TEST(n == name);
  BOOST_TEST(res == result);
  BOOST_TEST(!decode_step_value("", kind, n, res));
  BOOST_TEST(!decode_step_value("s9:ab", kind, n, res)); // name longer than the value
  BOOST_TEST(!decode_step_value("sx:ab", kind, n, res));
}

BOOST_AUTO_TEST_CASE(an_unreadable_checkpoint_is_a_mismatch_not_a_rerun) {
  auto store = std::make_shared<memory_checkpoint_store>();
  BOOST_REQUIRE(static_cast<bool>(store->write({{"k", "0", "garbage"}})));
  recorded_retry r;
  engine_metrics metrics;
  step_journal journal{"k", *store, r.retry, step_mode::batch, metrics};
  BOOST_REQUIRE(static_cast<bool>(journal.load()));
  step_scope root{journal, ""};
  bool ran = false;
  BOOST_CHECK_THROW(root.step("reserve",
                              [&] {
                                ran = true;
                                return std::string{};
                              }),
                    replay_mismatch);
  BOOST_TEST(!ran);
}

BOOST_AUTO_TEST_CASE(a_cancelled_call_starts_no_more_steps) {
  auto store = std::make_shared<memory_checkpoint_store>();
  recorded_retry r;
  engine_metrics metrics;
  std::atomic<bool> cancelled{false};
  step_journal journal{"k", *store, r.retry, step_mode::batch, metrics};
  journal.set_cancel_flag(&cancelled);
  BOOST_REQUIRE(static_cast<bool>(journal.load()));
  step_scope root{journal, ""};
  BOOST_TEST(root.step("a", [] { return std::string{"1"}; }) == "1");
  cancelled = true;
  BOOST_CHECK_THROW(root.step("b", [] { return std::string{"2"}; }), step_cancelled);
  BOOST_TEST(static_cast<bool>(journal.flush())); // what ran is still recorded
  std::vector<checkpoint> saved;
  BOOST_REQUIRE(static_cast<bool>(store->load("k", saved)));
  BOOST_TEST(saved.size() == 1u);
}

// ---- through the engine, on the memory store ------------------------------------------

MAILROOM_DURABLE_SCENARIO_CASES(memory_store)

BOOST_AUTO_TEST_CASE(a_failing_compensation_is_retried_then_recorded_in_the_dlq) {
  engine_harness h;
  h.checkpoints = memory_store();
  work_log log;
  std::atomic<int> refunds{0}, releases{0};
  h.handlers.add_durable("orders", [&](const envelope& m, handler_context& ctx) {
    ctx.step("reserve", logged(log, "reserve", "r"), [&](const std::string&) {
      // Fails twice, then works: within its retries.
      if (++releases < 3) {
        throw std::runtime_error("stock service busy");
      }
    });
    ctx.step("charge", logged(log, "charge", "c"), [&](const std::string&) {
      ++refunds;
      throw std::runtime_error("refund refused for " + m.id);
    });
    return outcome::dead_letter("card declined");
  });
  auto m = h.run_one();
  BOOST_TEST(refunds.load() == 4); // tried, and retried three times
  BOOST_TEST(releases.load() == 3);
  BOOST_TEST(m.compensations == 1u);
  BOOST_TEST(m.compensation_failures == 1u);
  auto dlq = h.transport->dead_letters();
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].record.reason ==
             "card declined; compensation of 1 (charge) failed 4 times: refund refused for m-1");
}

// A crash in the middle of compensating (the call hangs in the second
// compensation until the engine gives up on it): the redelivery runs only
// what was not compensated yet.
BOOST_AUTO_TEST_CASE(a_crash_mid_compensation_runs_each_compensation_once) {
  engine_harness h;
  h.checkpoints = memory_store();
  h.cfg.engine.handler_timeout = 300ms;
  h.cfg.retry.max_attempts = 5;
  work_log log;
  std::atomic<int> charge_undo_starts{0};
  std::atomic<bool> crashed_call_done{false};
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) {
    ctx.step("reserve", logged(log, "reserve", "r"), undo(log, "reserve"));
    ctx.step("charge", logged(log, "charge", "c"), [&](const std::string&) {
      if (++charge_undo_starts == 1) {
        while (!ctx.is_cancelled()) {
          std::this_thread::sleep_for(5ms); // "crashed" mid-compensation
        }
        crashed_call_done = true;
        throw std::runtime_error("killed");
      }
      log.ran("undo charge");
    });
    ctx.step("mail", logged(log, "mail", "m"), undo(log, "mail"));
    return outcome::dead_letter("address rejected");
  });
  h.publish("m-1", "k-1", "{}");
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  // The abandoned call reads this frame's variables until it lets go.
  BOOST_TEST(eventually([&] { return crashed_call_done.load(); }, 5000ms));
  std::this_thread::sleep_for(20ms);
  auto m = h.finish();
  BOOST_TEST(m.timeouts == 1u);
  BOOST_TEST(m.dead_lettered == 1u);
  BOOST_TEST(charge_undo_starts.load() == 2);
  BOOST_TEST(log.times("undo mail=m") == 1);   // done before the crash, not again
  BOOST_TEST(log.times("undo charge") == 1);   // finished on the redelivery
  BOOST_TEST(log.times("undo reserve=r") == 1); // never started by the crashed call
  BOOST_TEST(log.times("reserve") == 1);
}

BOOST_AUTO_TEST_CASE(a_store_outage_at_load_retries_then_redelivers) {
  auto store = std::make_shared<flaky_checkpoint_store>(memory_store());
  store->fail_loads = 4; // the first try and its three retries
  engine_harness h;
  h.checkpoints = store;
  std::atomic<int> calls{0};
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) {
    ++calls;
    ctx.step("a", [] { return std::string{"1"}; });
    return outcome::ok();
  });
  auto m = h.run_one();
  BOOST_TEST(calls.load() == 1); // never called without its history
  BOOST_TEST(store->load_calls.load() == 5);
  BOOST_TEST(m.checkpoint_errors == 4u);
  BOOST_TEST(m.retried == 1u);
  BOOST_TEST(m.acked == 1u);
}

BOOST_AUTO_TEST_CASE(a_fatal_store_error_is_not_retried) {
  auto store = std::make_shared<flaky_checkpoint_store>(memory_store());
  store->failure = failure_class::fatal;
  store->fail_loads = 1;
  engine_harness h;
  h.checkpoints = store;
  h.handlers.add_durable("orders", [&](const envelope&, handler_context&) {
    return outcome::ok();
  });
  auto m = h.run_one();
  BOOST_TEST(store->load_calls.load() == 2); // one refused call, then the redelivery's
  BOOST_TEST(m.checkpoint_errors == 1u);
  BOOST_TEST(m.retried == 1u);
  BOOST_TEST(m.acked == 1u);
}

BOOST_AUTO_TEST_CASE(a_durable_handler_needs_a_checkpoint_store) {
  engine_parts parts;
  parts.transport = std::make_shared<memory_transport>();
  parts.handlers.add_durable("orders",
                             [](const envelope&, handler_context&) { return outcome::ok(); });
  BOOST_CHECK_THROW(engine(scaled_down_config(), std::move(parts)), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_plain_handler_calling_a_step_is_told_why) {
  engine_harness h;
  h.cfg.retry.max_attempts = 1;
  h.handlers.add("orders", [&](const envelope&, handler_context& ctx) {
    ctx.step("a", [] { return std::string{}; });
    return outcome::ok();
  });
  h.run_one();
  auto dlq = h.transport->dead_letters();
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].record.reason.find("durable steps need a handler registered with "
                                       "add_durable") != std::string::npos);
}

// ---- the store contract ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(memory_store_passes_the_checkpoint_contract) {
  checkpoint_contract(*std::make_shared<memory_checkpoint_store>());
}

BOOST_AUTO_TEST_CASE(memory_store_outage_is_transient_and_changes_nothing) {
  memory_checkpoint_store store;
  BOOST_REQUIRE(static_cast<bool>(store.write({{"k", "0", "v"}})));
  store.set_failure(failure_class::transient);
  std::vector<checkpoint> out{{"x", "y", "z"}};
  BOOST_TEST((store.load("k", out).failure == failure_class::transient));
  BOOST_TEST(out.size() == 1u); // untouched
  BOOST_TEST((store.write({{"k", "1", "w"}}).failure == failure_class::transient));
  store.set_failure(failure_class::none);
  BOOST_REQUIRE(static_cast<bool>(store.load("k", out)));
  BOOST_TEST(out.size() == 1u);
}

// ---- typed steps ---------------------------------------------------------------------------

namespace shop {

struct reservation {
  std::string hold;
  int units = 0;
  bool operator==(const reservation& o) const { return hold == o.hold && units == o.units; }
};

void to_json(nlohmann::json& j, const reservation& r) { j = {{"hold", r.hold}, {"units", r.units}}; }
void from_json(const nlohmann::json& j, reservation& r) {
  j.at("hold").get_to(r.hold);
  j.at("units").get_to(r.units);
}

} // namespace shop

BOOST_AUTO_TEST_CASE(a_typed_step_replays_its_value_and_its_compensation_gets_it) {
  engine_harness h;
  h.checkpoints = memory_store();
  std::mutex mu;
  std::vector<shop::reservation> seen, undone;
  std::atomic<int> reserved{0};
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) {
    auto r = json_step<shop::reservation>(
        ctx, "reserve",
        [&] {
          ++reserved;
          return shop::reservation{"hold-7", 3};
        },
        [&](const shop::reservation& back) {
          std::lock_guard<std::mutex> guard{mu};
          undone.push_back(back);
        });
    {
      std::lock_guard<std::mutex> guard{mu};
      seen.push_back(r);
    }
    return ctx.attempt == 1 ? outcome::retry("once") : outcome::dead_letter("give up");
  });
  h.run_one();
  BOOST_TEST(reserved.load() == 1);
  BOOST_REQUIRE(seen.size() == 2u);
  BOOST_TEST((seen[1] == shop::reservation{"hold-7", 3})); // read back from JSON
  BOOST_REQUIRE(undone.size() == 1u);
  BOOST_TEST((undone[0] == shop::reservation{"hold-7", 3}));
}

BOOST_AUTO_TEST_CASE(a_checkpoint_of_another_type_is_dead_lettered_not_retried) {
  engine_harness h;
  h.checkpoints = memory_store();
  h.cfg.retry.max_attempts = 5;
  std::atomic<int> calls{0};
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) -> outcome {
    if (++calls == 1) {
      json_step<int>(ctx, "reserve", [] { return 42; });
      throw std::runtime_error("fails once");
    }
    // The "new code" reads the step as a reservation.
    json_step<shop::reservation>(ctx, "reserve", [] { return shop::reservation{}; });
    return outcome::ok();
  });
  auto m = h.run_one();
  BOOST_TEST(calls.load() == 2);
  BOOST_TEST(m.dead_lettered == 1u);
  auto dlq = h.transport->dead_letters();
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].record.reason.find("step reserve: its checkpoint does not read as the "
                                       "step's type") == 0u,
             dlq[0].record.reason);
}
