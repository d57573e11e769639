#pragma once

// The poller actor: asks the transport for as many messages as it holds
// credits for, and hands each batch to dedupe. Spawned detached, because a
// poll blocks for up to `engine.poll_wait`.

#include <memory>

#include <caf/all.hpp>

namespace mailroom {

struct engine_context;

/// Returns the behaviour of the poller feeding `dedupe`.
caf::behavior poller_actor(caf::event_based_actor* self,
                           std::shared_ptr<engine_context> ctx, caf::actor dedupe);

} // namespace mailroom
