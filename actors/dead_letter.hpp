#pragma once

// The dead-letter actor: masks configured payload fields, writes each parked
// message with its reason and history to the transport's dead-letter
// destination, and only then lets go of it. Spawned detached: writes block.

#include <memory>

#include <caf/all.hpp>

namespace mailroom {

struct engine_context;

/// Returns the behaviour of the dead-letter actor.
caf::behavior dead_letter_actor(caf::event_based_actor* self,
                                std::shared_ptr<engine_context> ctx);

} // namespace mailroom
