#include "actors/worker.hpp"

#include <spdlog/spdlog.h>

#include "actors/engine_context.hpp"
#include "actors/handler_lane.hpp"
#include "actors/messages.hpp"
#include "actors/worker_inbox.hpp"

namespace mailroom {

namespace {

// Most items one job takes: big enough to amortise a lane hand-off, small
// enough that one timeout re-queues little.
constexpr std::size_t max_job_items = 256;

std::atomic<std::uint64_t> next_job_id{1};
std::atomic<std::uint64_t> next_lane_seed{0x5eed};

struct worker_state {
  caf::event_based_actor* self;
  std::shared_ptr<engine_context> ctx;
  std::shared_ptr<worker_inbox> inbox;
  std::shared_ptr<handler_lane> lane;
  std::shared_ptr<lane_job> job;
  bool watchdog_armed = false;
  bool handing_back = false;

  void new_lane() {
    lane = std::make_shared<handler_lane>(ctx, inbox, next_lane_seed.fetch_add(1));
    lane->start();
    inbox->set_lane(lane);
    ctx->register_lane(lane);
  }

  void submit(work_batch items) {
    if (handing_back) {
      for (auto& item : items) {
        if (!item.preset && !item.requeue) {
          item.requeue = std::chrono::milliseconds{0};
        }
      }
    }
    job = std::make_shared<lane_job>();
    job->id = next_job_id.fetch_add(1, std::memory_order_relaxed);
    job->items = std::move(items);
    lane->submit(job);
    arm_watchdog(ctx->config.engine.handler_timeout);
  }

  void pump() {
    if (job) {
      return;
    }
    work_batch items;
    if (inbox->take(max_job_items, items) == 0) {
      return;
    }
    submit(std::move(items));
  }

  void arm_watchdog(std::chrono::milliseconds after) {
    if (watchdog_armed) {
      return;
    }
    watchdog_armed = true;
    self->delayed_send(self, std::max(after, std::chrono::milliseconds{1}),
                       watchdog_atom::value);
  }

  // Takes the running job away from the lane: decided items keep their
  // outcome, the running item gets `running_outcome` (or is handed back),
  // and a fresh lane settles them and runs the rest. Returns false when the
  // lane moved on first.
  bool take_over(std::uint64_t word, std::optional<outcome> running_outcome) {
    auto index = static_cast<std::size_t>(word >> 2);
    if (!job->progress.compare_exchange_strong(
          word, lane_job::word(index, lane_job::taken_over), std::memory_order_acq_rel)) {
      return false;
    }
    job->cancelled.store(true, std::memory_order_relaxed);
    // Copy, not move: the abandoned handler still reads its envelope.
    work_batch items = job->items;
    if (running_outcome) {
      items[index].preset = std::move(running_outcome);
    } else {
      items[index].requeue = std::chrono::milliseconds{0};
    }
    lane->abandon();
    new_lane();
    job.reset();
    submit(std::move(items));
    return true;
  }

  void on_watchdog() {
    watchdog_armed = false;
    if (!job) {
      return;
    }
    auto timeout = ctx->config.engine.handler_timeout;
    auto word = job->progress.load(std::memory_order_acquire);
    if (handing_back) {
      // Keep trying until the job is taken over or settles by itself.
      if ((word & 3) != lane_job::running || !take_over(word, std::nullopt)) {
        arm_watchdog(std::chrono::milliseconds{5});
      }
      return;
    }
    if ((word & 3) != lane_job::running) {
      arm_watchdog(timeout);
      return;
    }
    auto started = clock::time_point{
      std::chrono::nanoseconds{job->started_ns.load(std::memory_order_relaxed)}};
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
    if (elapsed < timeout) {
      arm_watchdog(timeout - elapsed);
      return;
    }
    auto reason = "handler timeout after " + std::to_string(timeout.count()) + " ms";
    if (take_over(word, outcome::retry(reason))) {
      ctx->metrics.timeouts.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("worker {}: {}; lane abandoned, a fresh one takes over",
                   inbox->index(), reason);
    } else {
      arm_watchdog(std::chrono::milliseconds{1});
    }
  }

  // Drain deadline: everything queued goes back to the transport, and a
  // handler still running is abandoned with its message handed back.
  void hand_back() {
    handing_back = true;
    if (job) {
      auto word = job->progress.load(std::memory_order_acquire);
      if ((word & 3) != lane_job::running || !take_over(word, std::nullopt)) {
        arm_watchdog(std::chrono::milliseconds{5});
      }
    }
    pump();
  }
};

} // namespace

caf::behavior worker_actor(caf::event_based_actor* self, std::shared_ptr<engine_context> ctx,
                           std::shared_ptr<worker_inbox> inbox) {
  auto st = std::make_shared<worker_state>();
  st->self = self;
  st->ctx = std::move(ctx);
  st->inbox = std::move(inbox);
  // A restarted worker adopts its predecessor's lane and whatever job runs on it.
  st->lane = st->inbox->attach(caf::actor_cast<caf::actor>(self));
  if (!st->lane || st->lane->exited()) {
    st->new_lane();
  } else if (st->lane->busy()) {
    st->job = st->lane->current();
    st->arm_watchdog(std::chrono::milliseconds{1});
  }
  st->pump();
  return {
    [st](wake_atom) { st->pump(); },
    [st](lane_done_atom, std::uint64_t id) {
      if (st->job && st->job->id == id) {
        st->job.reset();
      }
      st->pump();
    },
    [st](watchdog_atom) { st->on_watchdog(); },
    [st](handback_atom) { st->hand_back(); },
  };
}

} // namespace mailroom
