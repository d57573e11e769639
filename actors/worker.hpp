#pragma once

// The worker actor: owns one inbox and its lane, feeds the lane one job at a
// time, and times out handlers that overstay.

#include <memory>

#include <caf/all.hpp>

namespace mailroom {

struct engine_context;
class worker_inbox;

/// Returns the behaviour of a worker serving `inbox`.
caf::behavior worker_actor(caf::event_based_actor* self,
                           std::shared_ptr<engine_context> ctx,
                           std::shared_ptr<worker_inbox> inbox);

} // namespace mailroom
