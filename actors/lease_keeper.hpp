#pragma once

// The lease keeper: on a timer, renews the leases of every delivery the
// engine still holds (transports with leases only). Spawned detached: an
// extend call is broker I/O.

#include <memory>

#include <caf/all.hpp>

namespace mailroom {

struct engine_context;

/// Returns the behaviour of the lease keeper of `ctx` (which has leases).
caf::behavior lease_keeper_actor(caf::event_based_actor* self,
                                 std::shared_ptr<engine_context> ctx);

} // namespace mailroom
