#include "actors/sweeper.hpp"

#include <spdlog/spdlog.h>
#include <unordered_set>

#include "actors/engine_context.hpp"
#include "actors/messages.hpp"

namespace mailroom {

namespace {

constexpr std::size_t max_error_samples = 8;

// One tick's listings. A stage whose listing failed is skipped for the tick,
// its error sampled; a record both stale and reclaimable counts as stale.
sweep_summary sweep(engine_context& ctx, std::vector<dispatch_record>& out) {
  sweep_summary s;
  auto now = clock::now();
  auto& cfg = ctx.config.sweeper;
  std::vector<dispatch_record> stale, expired;
  auto note = [&](const char* what, const io_result& r, std::uint64_t& stage_errors) {
    if (r) {
      return true;
    }
    ++s.transient_errors;
    ++stage_errors;
    if (s.errors.size() < max_error_samples) {
      s.errors.push_back(std::string{what} + ": " + r.what);
    }
    return false;
  };
  if (!note("list_stale", ctx.claims->list_stale(now - cfg.stale_cutoff, cfg.limit, stale),
            s.stale_errors)) {
    stale.clear();
  }
  if (!note("list_reclaimable", ctx.claims->list_reclaimable(now, cfg.limit, expired),
            s.reclaimable_errors)) {
    expired.clear();
  }
  std::unordered_set<std::string> seen;
  for (auto& rec : stale) {
    if (seen.insert(rec.filed_under()).second) {
      out.push_back(std::move(rec));
      ++s.stale_found;
    }
  }
  for (auto& rec : expired) {
    if (seen.insert(rec.filed_under()).second) {
      out.push_back(std::move(rec));
      ++s.reclaimable_found;
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
            s.stale_recovered = s.stale_found;
            s.reclaimable_processed = s.reclaimable_found;
            self->send(poller, recover_atom::value, std::move(found));
          }
        }
        if (s.found > 0 || s.transient_errors > 0) {
          spdlog::info("sweeper: stale markers found {} recovered {} errors {}; reclaimable "
                       "claims found {} processed {} errors {}{}{}",
                       s.stale_found, s.stale_recovered, s.stale_errors, s.reclaimable_found,
                       s.reclaimable_processed, s.reclaimable_errors,
                       s.errors.empty() ? "" : ": ", s.errors.empty() ? "" : s.errors.front());
        } else {
          spdlog::debug("sweeper: nothing to recover");
        }
        // The summary is in place before the tick counts: whoever sees the
        // count (mailroom sweep) reads this tick's summary.
        auto& m = ctx->metrics;
        m.sweep_stale_found.fetch_add(s.stale_found, std::memory_order_relaxed);
        m.sweep_reclaimable_found.fetch_add(s.reclaimable_found, std::memory_order_relaxed);
        m.sweep_errors.fetch_add(s.transient_errors, std::memory_order_relaxed);
        ctx->set_last_sweep(std::move(s));
        m.sweeps.fetch_add(1, std::memory_order_release);
        self->delayed_send(self, ctx->config.sweeper.interval, tick_atom::value);
      },
  };
}

} // namespace mailroom
