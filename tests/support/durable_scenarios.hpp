#pragma once

// Test support: durable steps through a whole engine (memory transport), each
// scenario a function of the checkpoint store, so the memory and the Redis
// stores run the same bodies. Also a store decorator that fails on demand
// (fault injection a real server cannot do on cue).

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/checkpoint_store.hpp"
#include "tests/support/engine_harness.hpp"

namespace mailroom::testing {

/// Forwards to a real store, failing the next `fail_writes` writes (and
/// `fail_loads` loads) with `failure` first. Counts every call.
class flaky_checkpoint_store final : public checkpoint_store {
public:
  explicit flaky_checkpoint_store(std::shared_ptr<checkpoint_store> inner)
      : inner_(std::move(inner)) {}

  io_result write(const std::vector<checkpoint>& batch) override {
    ++write_calls;
    if (fail_writes.load() > 0) {
      --fail_writes;
      return failed();
    }
    return inner_->write(batch);
  }
  io_result read(const std::string& key, const std::string& step,
                 std::optional<std::string>& out) override {
    return inner_->read(key, step, out);
  }
  io_result load(const std::string& key, std::vector<checkpoint>& out) override {
    ++load_calls;
    if (fail_loads.load() > 0) {
      --fail_loads;
      return failed();
    }
    return inner_->load(key, out);
  }

  std::atomic<int> fail_writes{0}, fail_loads{0};
  std::atomic<int> write_calls{0}, load_calls{0};
  failure_class failure = failure_class::transient;

private:
  io_result failed() const {
    return failure == failure_class::transient ? io_result::transient("injected outage")
                                               : io_result::fatal("injected fatal error");
  }
  std::shared_ptr<checkpoint_store> inner_;
};

/// Counts how often each named piece of work ran, and in which order.
struct work_log {
  void ran(const std::string& what) {
    std::lock_guard<std::mutex> guard{mutex};
    ++count[what];
    order.push_back(what);
  }
  int times(const std::string& what) {
    std::lock_guard<std::mutex> guard{mutex};
    return count[what];
  }
  std::vector<std::string> sequence() {
    std::lock_guard<std::mutex> guard{mutex};
    return order;
  }
  std::mutex mutex;
  std::map<std::string, int> count;
  std::vector<std::string> order;
};

/// Returns a forward step that logs `what` and returns `result`.
inline step_scope::forward_fn logged(work_log& log, std::string what, std::string result) {
  return [&log, what = std::move(what), result = std::move(result)] {
    log.ran(what);
    return result;
  };
}

/// Returns a compensation that logs "undo <what>" with the step's result.
inline step_scope::compensate_fn undo(work_log& log, std::string what) {
  return [&log, what = std::move(what)](const std::string& result) {
    log.ran("undo " + what + "=" + result);
  };
}

// A message failing after step 2 of 3 is redelivered; steps 1 and 2 replay
// (their forward work runs once), step 3 runs on the second delivery.
inline void scenario_replay_after_failure(std::shared_ptr<checkpoint_store> store) {
  engine_harness h;
  h.checkpoints = store;
  work_log log;
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) {
    auto stock = ctx.step("reserve", logged(log, "reserve", "r-1"));
    auto charge = ctx.step("charge", logged(log, "charge", "c-" + stock));
    if (ctx.attempt == 1) {
      throw std::runtime_error("mail server down");
    }
    ctx.step("mail", logged(log, "mail", charge));
    return outcome::ok();
  });
  auto m = h.run_one();
  BOOST_TEST(m.acked == 1u);
  BOOST_TEST(m.retried == 1u);
  BOOST_TEST(log.times("reserve") == 1);
  BOOST_TEST(log.times("charge") == 1);
  BOOST_TEST(log.times("mail") == 1);
  BOOST_TEST(m.steps_executed == 3u);
  BOOST_TEST(m.steps_replayed == 2u);
  BOOST_TEST(m.handler_errors == 1u);
}

// The step at a position was checkpointed under another name: dead-lettered
// with the reason at once, never retried.
inline void scenario_replay_mismatch(std::shared_ptr<checkpoint_store> store) {
  engine_harness h;
  h.checkpoints = store;
  h.cfg.retry.max_attempts = 5;
  std::atomic<int> calls{0};
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) -> outcome {
    // The "new code" of the second delivery renamed the first step.
    ctx.step(++calls == 1 ? "reserve" : "reserve-v2", [] { return std::string{"x"}; });
    throw std::runtime_error("fails once");
  });
  auto m = h.run_one();
  BOOST_TEST(calls.load() == 2);
  BOOST_TEST(m.dead_lettered == 1u);
  auto dlq = h.transport->dead_letters();
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].record.reason == "replay mismatch at 0: expected reserve, got reserve-v2");
}

// Compensations run newest first when the handler dead-letters, each with
// its step's result.
inline void scenario_compensations_on_dead_letter(std::shared_ptr<checkpoint_store> store) {
  engine_harness h;
  h.checkpoints = store;
  work_log log;
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) {
    ctx.step("reserve", logged(log, "reserve", "r"), undo(log, "reserve"));
    ctx.step("charge", logged(log, "charge", "c"), undo(log, "charge"));
    ctx.step("note", logged(log, "note", "n")); // nothing to undo
    ctx.step("mail", logged(log, "mail", "m"), undo(log, "mail"));
    return outcome::dead_letter("address rejected");
  });
  auto m = h.run_one();
  BOOST_TEST(m.dead_lettered == 1u);
  BOOST_TEST(m.compensations == 3u);
  std::vector<std::string> want{"reserve",      "charge",       "note",         "mail",
                                "undo mail=m", "undo charge=c", "undo reserve=r"};
  BOOST_TEST(log.sequence() == want, boost::test_tools::per_element());
  auto dlq = h.transport->dead_letters();
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].record.reason == "address rejected");
}

// The retry budget runs out: the compensations run once, on the last
// attempt; the forward steps ran once across the three deliveries.
inline void scenario_compensations_on_budget_exhaustion(
    std::shared_ptr<checkpoint_store> store) {
  engine_harness h;
  h.checkpoints = store;
  h.cfg.retry.max_attempts = 3;
  work_log log;
  std::atomic<int> calls{0};
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) -> outcome {
    ++calls;
    ctx.step("reserve", logged(log, "reserve", "r"), undo(log, "reserve"));
    ctx.step("charge", logged(log, "charge", "c"), undo(log, "charge"));
    throw std::runtime_error("mail server down");
  });
  auto m = h.run_one();
  BOOST_TEST(calls.load() == 3);
  BOOST_TEST(m.dead_lettered == 1u);
  BOOST_TEST(log.times("reserve") == 1);
  BOOST_TEST(log.times("charge") == 1);
  std::vector<std::string> want{"reserve", "charge", "undo charge=c", "undo reserve=r"};
  BOOST_TEST(log.sequence() == want, boost::test_tools::per_element());
  auto dlq = h.transport->dead_letters();
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].record.reason.find("max attempts (3) exhausted") == 0u);
}

// Two children with steps of the same names do not collide, each replays
// its own results, and a child's rollback undoes only the child.
inline void scenario_children(std::shared_ptr<checkpoint_store> store) {
  engine_harness h;
  h.checkpoints = store;
  work_log log;
  std::mutex mu;
  std::vector<std::string> seen; // what each delivery read back
  std::atomic<std::size_t> rollback_failures{0};
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) {
    ctx.step("order", logged(log, "order", "o"), undo(log, "order"));
    auto a = ctx.child("parcel-a");
    auto b = ctx.child("parcel-b");
    auto pa = a.step("ship", logged(log, "ship a", "track-a"), undo(log, "ship a"));
    auto pb = b.step("ship", logged(log, "ship b", "track-b"), undo(log, "ship b"));
    {
      std::lock_guard<std::mutex> guard{mu};
      seen.push_back(pa + "," + pb);
    }
    if (ctx.attempt == 1) {
      throw std::runtime_error("once");
    }
    // Parcel b cannot go: only its own shipping is undone.
    rollback_failures = b.rollback().size();
    return outcome::ok();
  });
  auto m = h.run_one();
  BOOST_TEST(m.acked == 1u);
  BOOST_TEST(rollback_failures.load() == 0u);
  BOOST_REQUIRE(seen.size() == 2u);
  BOOST_TEST(seen[0] == "track-a,track-b");
  BOOST_TEST(seen[1] == "track-a,track-b"); // replayed, each from its own child
  BOOST_TEST(log.times("ship a") == 1);
  BOOST_TEST(log.times("ship b") == 1);
  BOOST_TEST(log.times("undo ship b=track-b") == 1);
  BOOST_TEST(log.times("undo ship a=track-a") == 0);
  BOOST_TEST(log.times("undo order=o") == 0);
}

// In batch mode a message's checkpoints go in one write; per step, one each.
inline void scenario_writes_per_message(std::shared_ptr<checkpoint_store> inner,
                                        step_mode mode, int expected_writes) {
  auto store = std::make_shared<flaky_checkpoint_store>(inner);
  engine_harness h;
  h.checkpoints = store;
  h.cfg.steps.mode = mode;
  h.handlers.add_durable("orders", [&](const envelope& msg, handler_context& ctx) {
    for (int i = 0; i < 3; ++i) {
      ctx.step("s" + std::to_string(i), [&] { return msg.id; });
    }
    return outcome::ok();
  });
  h.publish_many(10);
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  auto m = h.finish();
  BOOST_TEST(m.acked == 10u);
  BOOST_TEST(store->load_calls.load() == 10);
  BOOST_TEST(store->write_calls.load() == expected_writes);
}

// The final write fails past its retries: the message is retried, not
// acked; the next delivery writes them and acks.
inline void scenario_failed_flush_retries(std::shared_ptr<checkpoint_store> inner) {
  auto store = std::make_shared<flaky_checkpoint_store>(inner);
  store->fail_writes = 4; // the first try and its 3 retries
  engine_harness h;
  h.checkpoints = store;
  work_log log;
  std::atomic<std::uint64_t> acked_before_second{~0ull};
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) {
    if (ctx.attempt == 2) {
      acked_before_second = h.transport->stats().acked;
    }
    ctx.step("charge", logged(log, "charge", "c"));
    return outcome::ok();
  });
  auto m = h.run_one();
  BOOST_TEST(acked_before_second.load() == 0u); // nothing acked after the failed flush
  BOOST_TEST(m.retried == 1u);
  BOOST_TEST(m.acked == 1u);
  BOOST_TEST(m.checkpoint_errors == 4u);
  BOOST_TEST(store->write_calls.load() == 5);
  // Not durable the first time, so run again: at least once until written.
  BOOST_TEST(log.times("charge") == 2);
}

// Checkpoints flushed, then the call dies before its settle (here: it hangs
// past the handler timeout, as a crashed worker would): the redelivery
// replays the flushed steps.
inline void scenario_crash_between_flush_and_ack(std::shared_ptr<checkpoint_store> store) {
  engine_harness h;
  h.checkpoints = store;
  h.cfg.engine.handler_timeout = 300ms;
  work_log log;
  std::atomic<bool> release{false}, flushed{false};
  h.handlers.add_durable("orders", [&](const envelope&, handler_context& ctx) {
    ctx.step("reserve", logged(log, "reserve", "r"));
    ctx.step("charge", logged(log, "charge", "c"));
    if (ctx.attempt == 1) {
      flushed = static_cast<bool>(ctx.flush());
      while (!ctx.is_cancelled()) {
        std::this_thread::sleep_for(5ms); // "crashed": never returns in time
      }
      release = true;
      return outcome::ok(); // too late: ignored
    }
    return outcome::ok();
  });
  h.publish("m-1", "k-1", "{}");
  h.start();
  BOOST_REQUIRE(h.run_to_end());
  // The abandoned call still runs on its lane's thread and reads this
  // frame's variables: it must have let go before they go.
  BOOST_TEST(eventually([&] { return release.load(); }, 5000ms));
  std::this_thread::sleep_for(20ms);
  auto m = h.finish();
  BOOST_TEST(flushed.load());
  BOOST_TEST(m.timeouts == 1u);
  BOOST_TEST(m.acked == 1u);
  BOOST_TEST(log.times("reserve") == 1);
  BOOST_TEST(log.times("charge") == 1);
}

} // namespace mailroom::testing

/// Defines every scenario above as a Boost test case on the store `make()`
/// returns, so the memory and the Redis suites list them once, here.
#define MAILROOM_DURABLE_SCENARIO_CASES(make)                                              \
  BOOST_AUTO_TEST_CASE(replay_after_failure) { scenario_replay_after_failure(make()); }   \
  BOOST_AUTO_TEST_CASE(replay_mismatch_dead_letters) { scenario_replay_mismatch(make()); } \
  BOOST_AUTO_TEST_CASE(compensations_on_dead_letter) {                                     \
    scenario_compensations_on_dead_letter(make());                                         \
  }                                                                                        \
  BOOST_AUTO_TEST_CASE(compensations_on_budget_exhaustion) {                               \
    scenario_compensations_on_budget_exhaustion(make());                                   \
  }                                                                                        \
  BOOST_AUTO_TEST_CASE(children_do_not_collide_or_inherit) { scenario_children(make()); }  \
  BOOST_AUTO_TEST_CASE(batch_mode_writes_once_per_message) {                               \
    scenario_writes_per_message(make(), step_mode::batch, 10);                             \
  }                                                                                        \
  BOOST_AUTO_TEST_CASE(per_step_mode_writes_once_per_step) {                               \
    scenario_writes_per_message(make(), step_mode::per_step, 30);                          \
  }                                                                                        \
  BOOST_AUTO_TEST_CASE(failed_flush_retries_and_acks_nothing) {                            \
    scenario_failed_flush_retries(make());                                                 \
  }                                                                                        \
  BOOST_AUTO_TEST_CASE(crash_between_flush_and_ack_replays) {                              \
    scenario_crash_between_flush_and_ack(make());                                          \
  }
