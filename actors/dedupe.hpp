#pragma once

// The dedupe actor: claims a whole polled batch in one store round trip,
// settles duplicates at once, and dispatches the fresh messages to workers.

#include <memory>

#include <caf/all.hpp>

namespace mailroom {

struct engine_context;

/// Returns the behaviour of the dedupe actor (spawn it detached: store calls block).
caf::behavior dedupe_actor(caf::event_based_actor* self,
                           std::shared_ptr<engine_context> ctx);

} // namespace mailroom
