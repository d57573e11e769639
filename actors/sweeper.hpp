#pragma once

// The sweeper actor: on a timer, finds work that was dispatched and never
// settled (stale pending-dispatch markers, expired claims) and re-dispatches
// it through the poller. Spawned detached: claim-store queries block.

#include <memory>

#include <caf/all.hpp>

namespace mailroom {

struct engine_context;

/// Returns the behaviour of the sweeper.
caf::behavior sweeper_actor(caf::event_based_actor* self,
                            std::shared_ptr<engine_context> ctx);

} // namespace mailroom
