#pragma once

// State every actor, lane and settler of one engine shares: configuration,
// adapters, metrics, the queue, the settler, the pending asynchronous calls,
// the leases and the current handles of the long-lived actors. Handles
// change when the supervisor restarts a child, so they sit behind a mutex.

#include <memory>
#include <mutex>
#include <vector>

#include <caf/actor.hpp>

#include "actors/async_calls.hpp"
#include "actors/lease_tracker.hpp"
#include "actors/partition_ledger.hpp"
#include "actors/settler.hpp"
#include "actors/work_queue.hpp"
#include "actors/worker_slot.hpp"
#include "core/attempt_log.hpp"
#include "core/claim_store.hpp"
#include "core/engine_config.hpp"
#include "core/handler.hpp"
#include "core/idempotency_store.hpp"
#include "core/metrics.hpp"
#include "core/payload_mask.hpp"
#include "core/transport.hpp"
#include "mailroom/engine.hpp"

namespace mailroom {

class handler_lane;

/// The roles whose handles others look up.
enum class role { supervisor, poller, dead_letter, count };

/// Shared state of one engine; owned by `engine::impl`, referenced by every
/// actor and lane through a shared_ptr so an abandoned lane can outlive it.
struct engine_context {
  engine_config config;                           ///< Effective configuration.
  std::shared_ptr<transport> source;              ///< The transport.
  std::shared_ptr<idempotency_store> idempotency; ///< Null when dedupe is off.
  std::shared_ptr<claim_store> claims;            ///< Null when the sweeper is off.
  std::shared_ptr<attempt_log> attempts;          ///< Never null.
  handler_registry handlers;                      ///< Read-only after start.
  engine_metrics metrics;                         ///< Counters and latencies.
  payload_mask mask;                              ///< Dead-letter masking.
  work_queue queue;                               ///< Dispatched, waiting for a lane.
  settler settle;                                 ///< Settles what was decided.
  async_calls async;                              ///< Asynchronous calls in progress.
  /// Leases of what the engine holds; null when the transport has none.
  std::unique_ptr<lease_tracker> leases;
  /// What the engine holds per partition, and what was revoked.
  partition_ledger partitions;
  std::vector<std::shared_ptr<worker_slot>> slots; ///< One per worker.

  /// Builds the context; `mask` is built from `config.dead_letter`.
  engine_context(engine_config cfg, engine_parts parts);

  /// Returns the current handle of `r` (invalid while it restarts).
  caf::actor handle(role r) const;

  /// Replaces the handle of `r`.
  void set_handle(role r, caf::actor a);

  /// Drops every actor handle this context holds, so exited actors can be
  /// destroyed and the actor system can shut down.
  void clear_handles();

  /// Registers a lane so the engine can join or detach it at the end.
  void register_lane(std::shared_ptr<handler_lane> lane);

  /// Forgets every lane (here and in the slots): lanes and the context
  /// reference each other, so the engine breaks the cycle once it stopped.
  void release_lanes();

  /// Returns every lane registered so far.
  std::vector<std::shared_ptr<handler_lane>> lanes() const;

  /// Stores the summary of the latest sweeper tick.
  void set_last_sweep(sweep_summary s);

  /// Returns the summary of the latest sweeper tick.
  sweep_summary last_sweep() const;

private:
  mutable std::mutex mutex_;
  caf::actor handles_[static_cast<int>(role::count)];
  std::vector<std::shared_ptr<handler_lane>> lanes_;
  sweep_summary last_sweep_;
};

} // namespace mailroom
