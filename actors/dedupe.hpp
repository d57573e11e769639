#pragma once

// The dedupe actor: claims a whole polled batch in one store round trip,
// hands duplicates to the settler at once, and queues the fresh messages for
// the lanes.

#include <memory>

#include <caf/all.hpp>

namespace mailroom {

struct engine_context;

/// Returns the behaviour of the dedupe actor (spawn it detached: store calls block).
caf::behavior dedupe_actor(caf::event_based_actor* self,
                           std::shared_ptr<engine_context> ctx);

} // namespace mailroom
