#pragma once

// The vocabulary the actors speak: every atom and message type in one place.
// Includes CAF, so only actors/*.cpp include this file.

#include <cstdint>
#include <optional>
#include <vector>

#include <caf/all.hpp>

#include "core/claim_store.hpp"
#include "core/envelope.hpp"
#include "core/idempotency_store.hpp"
#include "core/outcome.hpp"
#include "actors/work_item.hpp"

namespace mailroom {

/// Poller: poll once more (self-sent loop step).
using poll_atom = caf::atom_constant<caf::atom("poll")>;
/// Supervisor → poller: `n` more messages may be taken in flight.
using credit_atom = caf::atom_constant<caf::atom("credit")>;
/// Poller → dedupe: a polled batch.
using batch_atom = caf::atom_constant<caf::atom("batch")>;
/// Worker (self): check the running unit against the handler timeout.
using watchdog_atom = caf::atom_constant<caf::atom("watchdog")>;
/// Anyone → supervisor: `n` messages were settled and left the engine.
using settled_atom = caf::atom_constant<caf::atom("settled")>;
/// Lane → dead-letter actor: messages to park.
using park_atom = caf::atom_constant<caf::atom("park")>;
/// Sweeper → poller: records to re-dispatch.
using recover_atom = caf::atom_constant<caf::atom("recover")>;
/// Timer ticks (sweeper, supervisor checks).
using tick_atom = caf::atom_constant<caf::atom("tick")>;
/// Engine → supervisor: begin the drain.
using drain_atom = caf::atom_constant<caf::atom("drain")>;
/// Supervisor → workers and dead-letter actor: hand back everything held.
using handback_atom = caf::atom_constant<caf::atom("handback")>;
/// Supervisor (self): restart child `index` after its backoff.
using restart_atom = caf::atom_constant<caf::atom("restart")>;
/// Engine → supervisor: crash worker `index` (fault injection).
using crash_atom = caf::atom_constant<caf::atom("crash")>;

/// A polled batch as it travels from poller to dedupe.
struct polled_batch {
  envelope_batch items; ///< Re-dispatched records first, then fresh deliveries.
  /// Tokens of the records the sweeper re-dispatched: `items[i]` for
  /// `i < recovered_tokens.size()` is a re-dispatch under that old token.
  std::vector<fencing_token> recovered_tokens;
  /// Leases of the fresh deliveries (`items[recovered_tokens.size() + i]`
  /// holds index i); null when the transport has no leases.
  lease_group* lease = nullptr;
  /// The number of the poll that received it (`partition_ledger`).
  std::uint64_t epoch = 0;
};

/// Messages on their way to the dead-letter destination.
struct park_batch {
  work_batch items; ///< Each item's `preset` holds the dead-letter reason.
};

} // namespace mailroom

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mailroom::polled_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mailroom::park_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mailroom::work_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<mailroom::dispatch_record>)
