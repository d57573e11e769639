#pragma once

// The supervisor: spawns and monitors the other actors, restarts a crashed
// child with backoff, grants the poller credits so in-flight work never
// exceeds `engine.max_in_flight`, and runs the drain.

#include <functional>
#include <memory>

#include <caf/all.hpp>

#include "mailroom/engine.hpp"

namespace mailroom {

struct engine_context;

/// Returns the behaviour of the supervisor; `on_stopped` runs once, when the
/// engine stopped, with how it ended.
caf::behavior supervisor_actor(caf::event_based_actor* self,
                               std::shared_ptr<engine_context> ctx,
                               std::function<void(const engine_exit&)> on_stopped);

} // namespace mailroom
