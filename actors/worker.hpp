#pragma once

// The worker actor: supervises one lane (kept in its slot across restarts)
// and times out blocking handlers that overstay.

#include <memory>

#include <caf/all.hpp>

namespace mailroom {

struct engine_context;
class worker_slot;

/// Returns the behaviour of the worker of `slot`.
caf::behavior worker_actor(caf::event_based_actor* self,
                           std::shared_ptr<engine_context> ctx,
                           std::shared_ptr<worker_slot> slot);

} // namespace mailroom
