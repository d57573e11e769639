#pragma once

// The durable-steps API a handler sees through its context: steps whose
// results are checkpointed and replayed on a later delivery, compensations
// that undo them when the message is dead-lettered, and child scopes.

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/io_result.hpp"

namespace mailroom {

class step_journal;

/// Thrown by a step whose position was checkpointed under another name: the
/// handler's code changed between deliveries. The message is dead-lettered
/// with this text; it is never retried.
class replay_mismatch : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Thrown by a step when the checkpoint store could not be read or written
/// (after its own retries): the message is retried, nothing is acked.
class step_store_failure : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Thrown when a step's result cannot be written as, or read back from, its
/// JSON checkpoint (json_step): a deterministic error, so the message is
/// dead-lettered, never retried.
class step_serialization_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Thrown by a step that starts after the engine stopped waiting for the
/// call (timed out, or the engine is stopping): its redelivery runs it.
class step_cancelled : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// One scope of durable steps: the handler's root scope, or a child.
///
/// Each step takes the next position of its scope; its id is the scope's
/// prefix plus that position ("0", "1", a child at 2 named "ship" gives
/// "2/0", "2/1"). The id, not the name, finds its checkpoint; the name must
/// match the one checkpointed there, or the step throws replay_mismatch. A
/// handler must therefore run its steps in the same order on every delivery
/// (branch on step results, which replay, not on the clock).
///
/// Used by one handler call on its thread; not thread-safe.
class step_scope {
public:
  /// Forward work of a step; its result is checkpointed.
  using forward_fn = std::function<std::string()>;
  /// Undoes a step, given the result its forward work returned.
  using compensate_fn = std::function<void(const std::string& result)>;

  /// Creates a scope of `journal` whose step ids start with `prefix`.
  step_scope(step_journal& journal, std::string prefix)
      : journal_(&journal), prefix_(std::move(prefix)) {}

  /// Runs `forward` once per message: on a later delivery the checkpointed
  /// result is returned and `forward` is not called. An exception from
  /// `forward` checkpoints nothing and leaves the handler.
  std::string step(const std::string& name, const forward_fn& forward);

  /// As step(name, forward), and registers `compensate` (once the forward
  /// work succeeded or was replayed) to undo it if the message ends in the
  /// dead-letter destination. Compensations run newest first, each at most
  /// once across deliveries once its run is checkpointed.
  std::string step(const std::string& name, const forward_fn& forward,
                   compensate_fn compensate);

  /// Returns a child scope at this scope's next position: its step ids are
  /// scoped under it, so two branches cannot collide, and its compensations
  /// are its own (see rollback()).
  step_scope child(const std::string& name);

  /// Runs, newest first, the compensations registered in this scope and its
  /// children that have not run yet, without touching the parent's (a
  /// branch that gives up undoes only itself). Returns the failures, one
  /// line each; empty when all ran.
  std::vector<std::string> rollback();

  /// Writes the checkpoints gathered so far now instead of when the handler
  /// returns (before calling something slow). A failure keeps them for the
  /// final write.
  io_result flush();

  /// Returns the id the next step of this scope will have.
  std::string next_id() const { return prefix_ + std::to_string(next_); }

private:
  std::string take_id() { return prefix_ + std::to_string(next_++); }

  step_journal* journal_;
  std::string prefix_;
  std::uint32_t next_ = 0;
};

} // namespace mailroom
