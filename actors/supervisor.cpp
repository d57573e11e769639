#include "actors/supervisor.hpp"

#include <spdlog/spdlog.h>

#include "actors/dead_letter.hpp"
#include "actors/dedupe.hpp"
#include "actors/lease_keeper.hpp"
#include "actors/engine_context.hpp"
#include "actors/messages.hpp"
#include "actors/poller.hpp"
#include "actors/sweeper.hpp"
#include "actors/worker.hpp"

namespace mailroom {

namespace {

// How often the supervisor looks at a finite source and at a drain.
constexpr std::chrono::milliseconds check_period{20};
// After the drain deadline handed everything back, how long settlement of
// the hand-back may take before the engine stops regardless.
constexpr std::chrono::milliseconds handback_grace{3000};

enum class child_kind : std::uint8_t {
  poller,
  dedupe,
  dead_letter,
  sweeper,
  lease_keeper,
  worker
};

const char* name_of(child_kind k) {
  switch (k) {
  case child_kind::poller:
    return "poller";
  case child_kind::dedupe:
    return "dedupe";
  case child_kind::dead_letter:
    return "dead-letter";
  case child_kind::sweeper:
    return "sweeper";
  case child_kind::lease_keeper:
    return "lease keeper";
  default:
    return "worker";
  }
}

struct child {
  child_kind kind;
  std::uint32_t index = 0;
  caf::actor handle;
  std::uint32_t crashes = 0;
  clock::time_point started;
  std::string last_reason;
};

// A child that stops this many times in a row for the same reason, each time
// soon after its restart, will not heal by restarting: the engine gives up.
constexpr std::uint32_t max_same_crashes = 5;

struct supervisor_state {
  caf::event_based_actor* self;
  std::shared_ptr<engine_context> ctx;
  std::function<void(const engine_exit&)> on_stopped;
  std::vector<child> children;
  bool draining = false;
  bool handed_back = false;
  std::string failure;
  clock::time_point deadline;
  clock::time_point hard_deadline;

  child* find(const caf::actor_addr& addr) {
    for (auto& c : children) {
      if (c.handle && c.handle.address() == addr) {
        return &c;
      }
    }
    return nullptr;
  }

  child* find(child_kind k, std::uint32_t index = 0) {
    for (auto& c : children) {
      if (c.kind == k && c.index == index) {
        return &c;
      }
    }
    return nullptr;
  }

  caf::actor spawn(child_kind k, std::uint32_t index) {
    switch (k) {
    case child_kind::poller: {
      auto dedupe = find(child_kind::dedupe)->handle;
      auto a = self->spawn<caf::detached + caf::monitored>(poller_actor, ctx, dedupe);
      ctx->set_handle(role::poller, a);
      // A new poller starts with what the budget has room for.
      auto room = static_cast<std::int64_t>(ctx->config.engine.max_in_flight) -
                  ctx->metrics.in_flight();
      if (room > 0) {
        self->send(a, credit_atom::value, static_cast<std::uint64_t>(room));
      }
      return a;
    }
    case child_kind::dedupe:
      return self->spawn<caf::detached + caf::monitored>(dedupe_actor, ctx);
    case child_kind::dead_letter: {
      auto a = self->spawn<caf::detached + caf::monitored>(dead_letter_actor, ctx);
      ctx->set_handle(role::dead_letter, a);
      return a;
    }
    case child_kind::sweeper:
      return self->spawn<caf::detached + caf::monitored>(sweeper_actor, ctx);
    case child_kind::lease_keeper:
      return self->spawn<caf::detached + caf::monitored>(lease_keeper_actor, ctx);
    default:
      return self->spawn<caf::monitored>(worker_actor, ctx, ctx->slots[index]);
    }
  }

  void start_child(child_kind k, std::uint32_t index) {
    auto* c = find(k, index);
    if (c == nullptr) {
      children.push_back({k, index, {}, 0, {}, {}});
      c = &children.back();
    }
    c->started = clock::now();
    c->handle = spawn(k, index);
  }

  void start_all() {
    ctx->set_handle(role::supervisor, caf::actor_cast<caf::actor>(self));
    children.reserve(ctx->slots.size() + 5);
    start_child(child_kind::dead_letter, 0);
    for (std::uint32_t i = 0; i < ctx->slots.size(); ++i) {
      start_child(child_kind::worker, i);
    }
    start_child(child_kind::dedupe, 0);
    start_child(child_kind::poller, 0);
    if (ctx->claims) {
      start_child(child_kind::sweeper, 0);
    }
    if (ctx->leases) {
      start_child(child_kind::lease_keeper, 0);
    }
    self->delayed_send(self, check_period, tick_atom::value);
  }

  void on_down(const caf::down_msg& msg) {
    auto* c = find(msg.source);
    if (c == nullptr) {
      return;
    }
    c->handle = nullptr;
    if (draining) {
      return;
    }
    auto& cfg = ctx->config.engine;
    // A child that lived long enough counts as healthy: its backoff starts over.
    if (clock::now() - c->started > 10 * cfg.restart_backoff_cap) {
      c->crashes = 0;
    }
    auto reason = caf::to_string(msg.reason);
    if (reason != c->last_reason) {
      c->crashes = 0;
    }
    c->last_reason = reason;
    if (c->crashes + 1 >= max_same_crashes) {
      give_up(*c, reason);
      return;
    }
    auto shift = std::min<std::uint32_t>(c->crashes++, 20);
    auto backoff = std::min<std::chrono::milliseconds>(
        cfg.restart_backoff_cap, cfg.restart_backoff_base * (std::int64_t{1} << shift));
    spdlog::error("supervisor: {} {} stopped ({}); restarting in {} ms", name_of(c->kind),
                  c->index, reason, backoff.count());
    self->delayed_send(self, backoff, restart_atom::value,
                       static_cast<std::uint8_t>(c->kind), c->index);
  }

  // Ends the run: the child fails the same way on every restart.
  void give_up(const child& c, const std::string& reason) {
    failure = std::string{name_of(c.kind)} + " " + std::to_string(c.index) + " stopped " +
              std::to_string(max_same_crashes) + " times in a row (" + reason +
              "); giving up";
    spdlog::critical("supervisor: {}", failure);
    begin_drain();
  }

  void restart(child_kind k, std::uint32_t index) {
    if (draining) {
      return;
    }
    ctx->metrics.restarts.fetch_add(1, std::memory_order_relaxed);
    start_child(k, index);
    // Whoever holds the dedupe handle must learn the new one.
    if (k == child_kind::dedupe) {
      if (auto* p = find(child_kind::poller); p && p->handle) {
        self->send_exit(p->handle, caf::exit_reason::user_shutdown);
      }
    }
  }

  void begin_drain() {
    if (draining) {
      return;
    }
    draining = true;
    deadline = clock::now() + ctx->config.engine.drain_timeout;
    hard_deadline = deadline + handback_grace;
    spdlog::info("supervisor: draining ({} in flight, deadline {} ms)",
                 ctx->metrics.in_flight(), ctx->config.engine.drain_timeout.count());
    if (auto* p = find(child_kind::poller); p && p->handle) {
      self->send(p->handle, drain_atom::value);
    }
    if (auto* s = find(child_kind::sweeper); s && s->handle) {
      self->send_exit(s->handle, caf::exit_reason::user_shutdown);
    }
    check();
  }

  void check() {
    auto now = clock::now();
    if (auto expired = ctx->async.expire_due(now); expired > 0) { // counted there
      spdlog::warn("supervisor: {} asynchronous handler calls timed out after {} ms",
                   expired, ctx->config.engine.handler_timeout.count());
    }
    auto in_flight = ctx->metrics.in_flight();
    if (!draining) {
      if (ctx->config.engine.stop_when_exhausted && in_flight == 0 &&
          ctx->source->exhausted()) {
        spdlog::info("supervisor: source exhausted and every message settled");
        begin_drain();
        return;
      }
    } else if (in_flight <= 0) {
      finish(true);
      return;
    } else if (!handed_back && now >= deadline) {
      handed_back = true;
      spdlog::warn("supervisor: drain deadline passed; handing back the {} messages still "
                   "in flight",
                   in_flight);
      ctx->queue.set_handing_back();
      ctx->queue.wake_all();
      ctx->async.hand_back_all();
      for (auto& c : children) {
        if (c.handle &&
            (c.kind == child_kind::worker || c.kind == child_kind::dead_letter)) {
          self->send(c.handle, handback_atom::value);
        }
      }
    } else if (handed_back && now >= hard_deadline) {
      spdlog::error("supervisor: {} messages still unsettled at shutdown; the transport "
                    "redelivers them after their visibility timeout",
                    in_flight);
      finish(false);
      return;
    }
    self->delayed_send(self, check_period, tick_atom::value);
  }

  void finish(bool all_settled) {
    for (auto& c : children) {
      if (c.handle) {
        self->send_exit(c.handle, caf::exit_reason::user_shutdown);
      }
    }
    if (on_stopped) {
      engine_exit exit;
      exit.drained = all_settled && !handed_back;
      exit.handed_back = ctx->metrics.handed_back.load(std::memory_order_relaxed);
      exit.abandoned =
          all_settled ? 0 : static_cast<std::uint64_t>(std::max<std::int64_t>(
                                0, ctx->metrics.in_flight()));
      exit.failure = failure;
      on_stopped(exit);
      on_stopped = nullptr;
    }
    self->quit();
  }
};

} // namespace

caf::behavior supervisor_actor(caf::event_based_actor* self,
                               std::shared_ptr<engine_context> ctx,
                               std::function<void(const engine_exit&)> on_stopped) {
  auto st = std::make_shared<supervisor_state>();
  st->self = self;
  st->ctx = std::move(ctx);
  st->on_stopped = std::move(on_stopped);
  self->set_down_handler([st](caf::down_msg& msg) { st->on_down(msg); });
  st->start_all();
  // The whole budget goes to the poller up front; settled messages return it.
  return {
      [st](settled_atom, std::uint64_t n) {
        if (!st->draining) {
          if (auto* p = st->find(child_kind::poller); p && p->handle) {
            st->self->send(p->handle, credit_atom::value, n);
          }
        }
      },
      [st](tick_atom) { st->check(); },
      [st](drain_atom) { st->begin_drain(); },
      [st](restart_atom, std::uint8_t kind, std::uint32_t index) {
        st->restart(static_cast<child_kind>(kind), index);
      },
      [st](crash_atom, std::uint32_t index) {
        if (auto* c = st->find(child_kind::worker, index); c && c->handle) {
          st->self->send_exit(c->handle, caf::exit_reason::kill);
        }
      },
  };
}

} // namespace mailroom
