#include "actors/sweeper.hpp"

#include <spdlog/spdlog.h>
#include <unordered_set>

#include "actors/engine_context.hpp"
#include "actors/messages.hpp"

namespace mailroom {

namespace {

constexpr std::size_t max_error_samples = 8;

sweep_summary sweep(engine_context& ctx, std::vector<dispatch_record>& out) {
  sweep_summary s;
  auto now = clock::now();
  auto& cfg = ctx.config.sweeper;
  std::vector<dispatch_record> stale, expired;
  auto note = [&](const char* what, const io_result& r) {
    if (!r) {
      ++s.transient_errors;
      if (s.errors.size() < max_error_samples) {
        s.errors.push_back(std::string{what} + ": " + r.what);
      }
    }
  };
  note("list_stale", ctx.claims->list_stale(now - cfg.stale_cutoff, cfg.limit, stale));
  note("list_reclaimable", ctx.claims->list_reclaimable(now, cfg.limit, expired));
  std::unordered_set<std::string> seen;
  for (auto* list : {&stale, &expired}) {
    for (auto& rec : *list) {
      if (seen.insert(rec.filed_under()).second) {
        out.push_back(std::move(rec));
      }
    }
  }
  s.found = out.size();
  return s;
}

} // namespace

caf::behavior sweeper_actor(caf::event_based_actor* self,
                            std::shared_ptr<engine_context> ctx) {
  self->send(self, tick_atom::value);
  return {
      [self, ctx](tick_atom) {
        std::vector<dispatch_record> found;
        sweep_summary s;
        try {
          s = sweep(*ctx, found);
        } catch (const std::exception& e) {
          ++s.transient_errors;
          s.errors.push_back(e.what());
        }
        if (!found.empty()) {
          if (auto poller = ctx->handle(role::poller)) {
            s.recovered = found.size();
            self->send(poller, recover_atom::value, std::move(found));
          }
        }
        ctx->metrics.sweeps.fetch_add(1, std::memory_order_relaxed);
        if (s.found > 0 || s.transient_errors > 0) {
          spdlog::info("sweeper: found {}, recovered {}, transient errors {}{}{}",
                       s.found, s.recovered, s.transient_errors,
                       s.errors.empty() ? "" : ": ",
                       s.errors.empty() ? "" : s.errors.front());
        } else {
          spdlog::debug("sweeper: nothing to recover");
        }
        ctx->set_last_sweep(std::move(s));
        self->delayed_send(self, ctx->config.sweeper.interval, tick_atom::value);
      },
  };
}

} // namespace mailroom
