#pragma once

/// The in-process adapters, for services and tests that embed the engine
/// without a broker or Redis: the memory transport (SQS-like visibility,
/// bounded), and the memory idempotency, claim, checkpoint and attempt-log
/// stores.
///
/// ```cpp
/// #include <mailroom/engine.hpp>
/// #include <mailroom/memory.hpp>
/// ```

#include "stores/memory/memory_attempt_log.hpp"
#include "stores/memory/memory_checkpoint_store.hpp"
#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"
#include "transports/memory/memory_transport.hpp"
