#pragma once

#include <memory>

#include "core/checkpoint_store.hpp"
#include "core/dedupe_key.hpp"
#include "core/handler.hpp"
#include "core/io_retry.hpp"
#include "core/metrics.hpp"
#include "core/step_mode.hpp"

namespace mailroom {

/// What the durable handlers of one engine share.
struct durable_services {
  std::shared_ptr<checkpoint_store> store; ///< Where step results live.
  step_mode mode = step_mode::batch;       ///< When checkpoints are written.
  dedupe_scope scope = dedupe_scope::topic; ///< Key layout, as the idempotency keys'.
  io_retry retry;                          ///< Backoff of every checkpoint call.
  engine_metrics* metrics = nullptr;       ///< Step counters; never null in use.
};

/// Returns a blocking handler that runs `fn` with durable steps.
///
/// Per call: the message's checkpoints are loaded in one store call (a
/// failure retries the message, `fn` unrun); `fn` runs with
/// `handler_context::steps` set; the checkpoints it gathered are written in
/// one call before the outcome is returned, whatever it is (a failed write
/// turns it into `retry`: nothing is acked that is not durable). When the
/// message is to be dead-lettered (a `dead_letter` outcome, a replay
/// mismatch, or a failure on the final attempt) the compensations its
/// steps registered run newest first, and their failures are added to the
/// reason the dead-letter record carries.
///
/// Exceptions from `fn` are turned into `retry` (counted as handler
/// errors), a replay_mismatch into `dead_letter`, a step_store_failure into
/// `retry`.
handler_fn make_durable(handler_fn fn, std::shared_ptr<durable_services> services);

} // namespace mailroom
