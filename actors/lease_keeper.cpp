#include "actors/lease_keeper.hpp"

#include <spdlog/spdlog.h>

#include "actors/engine_context.hpp"
#include "actors/messages.hpp"

namespace mailroom {

caf::behavior lease_keeper_actor(caf::event_based_actor* self,
                                 std::shared_ptr<engine_context> ctx) {
  auto period = ctx->leases->terms().renew_every;
  self->delayed_send(self, period, tick_atom::value);
  return {
      [self, ctx, period](tick_atom) {
        auto r = ctx->leases->renew(*ctx->source, clock::now());
        auto& m = ctx->metrics;
        m.leases_extended.fetch_add(r.extended, std::memory_order_relaxed);
        m.leases_lost.fetch_add(r.lost, std::memory_order_relaxed);
        if (!r.status) {
          m.transport_error(r.status.failure);
          spdlog::warn("lease keeper: extending {} leases on {} failed: {}", r.extended,
                       ctx->source->name(), r.status.what);
        } else if (r.lost > 0) {
          spdlog::warn("lease keeper: {} deliveries are no longer this consumer's (taken "
                       "over or settled elsewhere); their settles will be stale",
                       r.lost);
        }
        self->delayed_send(self, period, tick_atom::value);
      },
  };
}

} // namespace mailroom
