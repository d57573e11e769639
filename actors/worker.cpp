#include "actors/worker.hpp"

#include <spdlog/spdlog.h>

#include "actors/engine_context.hpp"
#include "actors/handler_lane.hpp"
#include "actors/messages.hpp"
#include "actors/worker_inbox.hpp"

namespace mailroom {

namespace {

std::atomic<std::uint64_t> next_lane_seed{0x5eed};

struct worker_state {
  caf::event_based_actor* self;
  std::shared_ptr<engine_context> ctx;
  std::shared_ptr<worker_inbox> inbox;
  std::shared_ptr<handler_lane> lane;
  bool handing_back = false;

  // How often the watchdog looks at the running handler: a quarter of the
  // timeout, so a timeout is noticed at most 25 % late.
  std::chrono::milliseconds period() const {
    auto quarter = ctx->config.engine.handler_timeout / 4;
    return std::clamp<std::chrono::milliseconds>(quarter, std::chrono::milliseconds{5},
                                                 std::chrono::milliseconds{500});
  }

  // Starts a lane on the inbox; `first` is queued ahead of everything before
  // the lane runs, so the order of a taken-over job is kept.
  void new_lane(work_batch first = {}) {
    lane = std::make_shared<handler_lane>(ctx, inbox, next_lane_seed.fetch_add(1));
    inbox->push_front(std::move(first));
    inbox->set_lane(lane);
    ctx->register_lane(lane);
    lane->start();
  }

  void arm(std::chrono::milliseconds after) {
    self->delayed_send(self, after, watchdog_atom::value);
  }

  // Takes the running job away from the lane: decided items keep their
  // outcome, the running item gets `running_outcome` (or is handed back),
  // and a fresh lane settles them and runs the rest. Returns false when the
  // lane moved on first.
  bool take_over(lane_job& job, std::uint64_t word,
                 std::optional<outcome> running_outcome) {
    auto index = static_cast<std::size_t>(word >> 2);
    if (!job.progress.compare_exchange_strong(word,
                                              lane_job::word(index, lane_job::taken_over),
                                              std::memory_order_acq_rel)) {
      return false;
    }
    job.cancelled.store(true, std::memory_order_relaxed);
    // Copy, not move: the abandoned handler still reads its envelope.
    work_batch items = job.items;
    if (running_outcome) {
      items[index].preset = std::move(running_outcome);
    } else {
      items[index].requeue = std::chrono::milliseconds{0};
    }
    lane->abandon();
    new_lane(std::move(items));
    return true;
  }

  void on_watchdog() {
    auto job = lane->current();
    auto word = job ? job->progress.load(std::memory_order_acquire) : 0;
    bool running = job && (word & 3) == lane_job::running;
    if (handing_back) {
      if (running) {
        take_over(*job, word, std::nullopt);
      }
      arm(std::chrono::milliseconds{5});
      return;
    }
    if (running) {
      auto timeout = ctx->config.engine.handler_timeout;
      auto started = clock::time_point{
          std::chrono::nanoseconds{job->started_ns.load(std::memory_order_relaxed)}};
      if (clock::now() - started >= timeout) {
        auto reason = "handler timeout after " + std::to_string(timeout.count()) + " ms";
        if (take_over(*job, word, outcome::retry(reason))) {
          ctx->metrics.timeouts.fetch_add(1, std::memory_order_relaxed);
          spdlog::warn("worker {}: {}; lane abandoned, a fresh one takes over",
                       inbox->index(), reason);
        }
      }
    }
    arm(period());
  }

  // Drain deadline: queued work goes back to the transport, and a handler
  // still running is abandoned with its message handed back.
  void hand_back() {
    handing_back = true;
    inbox->set_handing_back();
    inbox->wake_all();
  }
};

} // namespace

caf::behavior worker_actor(caf::event_based_actor* self,
                           std::shared_ptr<engine_context> ctx,
                           std::shared_ptr<worker_inbox> inbox) {
  auto st = std::make_shared<worker_state>();
  st->self = self;
  st->ctx = std::move(ctx);
  st->inbox = std::move(inbox);
  // A restarted worker adopts its predecessor's lane, and whatever it runs.
  st->lane = st->inbox->attach(caf::actor_cast<caf::actor>(self));
  if (!st->lane || st->lane->exited()) {
    st->new_lane();
  }
  st->handing_back = st->inbox->handing_back();
  st->arm(st->period());
  return {
      [st](watchdog_atom) { st->on_watchdog(); },
      [st](handback_atom) { st->hand_back(); },
  };
}

} // namespace mailroom
