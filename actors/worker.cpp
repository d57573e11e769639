#include "actors/worker.hpp"

#include <iterator>

#include <spdlog/spdlog.h>

#include "actors/engine_context.hpp"
#include "actors/handler_lane.hpp"
#include "actors/messages.hpp"
#include "actors/retry_order.hpp"

namespace mailroom {

namespace {

struct worker_state {
  caf::event_based_actor* self;
  std::shared_ptr<engine_context> ctx;
  std::shared_ptr<worker_slot> slot;
  std::shared_ptr<handler_lane> lane;
  bool handing_back = false;

  // How often the watchdog looks at the running handler: a quarter of the
  // timeout, so a timeout is noticed at most 25 % late.
  std::chrono::milliseconds period() const {
    auto quarter = ctx->config.engine.handler_timeout / 4;
    return std::clamp<std::chrono::milliseconds>(quarter, std::chrono::milliseconds{5},
                                                 std::chrono::milliseconds{500});
  }

  void new_lane() {
    lane = std::make_shared<handler_lane>(ctx, slot->index());
    slot->set_lane(lane);
    ctx->register_lane(lane);
    lane->start();
  }

  void arm(std::chrono::milliseconds after) {
    self->delayed_send(self, after, watchdog_atom::value);
  }

  // Takes the running unit away from the lane: decided items keep their
  // outcome, the running item gets `running_outcome` (or is handed back);
  // both go to the settler, the items not started go back to the queue, and
  // a fresh lane takes over. Returns false when the lane moved on first.
  bool take_over(lane_unit& unit, std::uint64_t word,
                 std::optional<outcome> running_outcome) {
    auto index = static_cast<std::size_t>(word >> 2);
    if (!unit.progress.compare_exchange_strong(
            word, lane_unit::word(index, lane_unit::taken_over), std::memory_order_acq_rel)) {
      return false;
    }
    unit.cancelled.store(true, std::memory_order_relaxed);
    // Copies, not moves: the abandoned handler still reads its envelope.
    work_batch decided, not_started;
    // A batch handler's call covers items index..batch_end-1: all timed out.
    auto running_end = std::max(index + 1, unit.batch_end.load(std::memory_order_relaxed));
    for (std::size_t i = 0; i < unit.items.size(); ++i) {
      const auto& item = unit.items[i];
      if (item.async_started) {
        continue; // its call decides it, by completion or by its own timeout
      }
      if (i < index) {
        decided.push_back(item);
      } else if (i < running_end) {
        decided.push_back(item);
        if (running_outcome) {
          decided.back().preset = running_outcome; // copied: a batch has several
        } else {
          decided.back().requeue = std::chrono::milliseconds{0};
          decided.back().drained = true;
        }
      } else {
        not_started.push_back(item);
      }
    }
    lane->abandon();
    auto& m = ctx->metrics;
    m.running.fetch_sub(static_cast<std::int64_t>(decided.size() + not_started.size()),
                        std::memory_order_relaxed);
    work_batch behind;
    bool retried = running_outcome && running_outcome->what == outcome::kind::retry;
    if (retried && keeps_retry_order(*ctx)) {
      // The timed-out message is retried in its place: the rest of its key
      // waits behind it instead of running first.
      auto key = ctx->queue.key_of(unit.items[index].msg);
      auto n = mark_behind_retry(*ctx, not_started, 0, key);
      std::size_t moved = 0;
      for (auto it = not_started.begin(); it != not_started.end() && moved < n;) {
        if (it->behind_retry) {
          decided.push_back(std::move(*it));
          it = not_started.erase(it);
          ++moved;
        } else {
          ++it;
        }
      }
      behind = take_behind_retry(*ctx, {key});
    }
    ctx->queue.finish_all(decided);
    ctx->queue.put_back(std::move(not_started));
    std::move(behind.begin(), behind.end(), std::back_inserter(decided));
    ctx->settle.push(std::move(decided));
    new_lane();
    return true;
  }

  void on_watchdog() {
    auto unit = lane->current();
    auto word = unit ? unit->progress.load(std::memory_order_acquire) : 0;
    bool running = unit && (word & 3) == lane_unit::running;
    if (handing_back || ctx->queue.handing_back()) {
      handing_back = true;
      if (running) {
        take_over(*unit, word, std::nullopt);
      }
      arm(std::chrono::milliseconds{5});
      return;
    }
    if (running) {
      auto timeout = ctx->config.engine.handler_timeout;
      auto started = clock::time_point{
          std::chrono::nanoseconds{unit->started_ns.load(std::memory_order_relaxed)}};
      if (clock::now() - started >= timeout) {
        auto reason = "handler timeout after " + std::to_string(timeout.count()) + " ms";
        if (take_over(*unit, word, outcome::retry(reason))) {
          // The unit is ours only now (the lane may have moved its items
          // until the swap). A running asynchronous item was moved into its
          // call, whose own timeout counts it.
          auto index = static_cast<std::size_t>(word >> 2);
          if (index < unit->items.size() && !unit->items[index].async_started) {
            ctx->metrics.timeout(unit->items[index].msg.topic);
          }
          spdlog::warn("worker {}: {}; lane abandoned, a fresh one takes over",
                       slot->index(), reason);
        }
      }
    }
    arm(period());
  }
};

} // namespace

caf::behavior worker_actor(caf::event_based_actor* self,
                           std::shared_ptr<engine_context> ctx,
                           std::shared_ptr<worker_slot> slot) {
  auto st = std::make_shared<worker_state>();
  st->self = self;
  st->ctx = std::move(ctx);
  st->slot = std::move(slot);
  // A restarted worker adopts its predecessor's lane, and whatever it runs.
  st->lane = st->slot->lane();
  if (!st->lane || st->lane->exited()) {
    st->new_lane();
  }
  st->arm(st->period());
  return {
      [st](watchdog_atom) { st->on_watchdog(); },
      [st](handback_atom) {
        st->handing_back = true;
        st->ctx->queue.set_handing_back();
        st->ctx->queue.wake_all();
      },
  };
}

} // namespace mailroom
