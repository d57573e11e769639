#pragma once

/// The public face of mailroom: what a service includes to embed the engine.
///
/// ```cpp
/// mailroom::handler_registry handlers;
/// handlers.add("orders", [](const mailroom::envelope& m, mailroom::handler_context&) {
///   return mailroom::outcome::ok();
/// });
/// mailroom::engine e{cfg, {transport, idempotency, claims, std::move(handlers)}};
/// e.start();
/// ...
/// e.stop(); // drains: in-flight work finishes or is handed back
/// ```
///
/// No CAF header is included here: the actor system lives behind a pimpl.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/attempt_log.hpp"
#include "core/checkpoint_store.hpp"
#include "core/claim_store.hpp"
#include "core/engine_config.hpp"
#include "core/envelope.hpp"
#include "core/handler.hpp"
#include "core/idempotency_store.hpp"
#include "core/metrics.hpp"
#include "core/outcome.hpp"
#include "core/transport.hpp"

namespace mailroom {

/// The adapters and handlers an engine runs with.
struct engine_parts {
  std::shared_ptr<mailroom::transport> transport; ///< Required.
  std::shared_ptr<idempotency_store> idempotency; ///< Null disables dedupe.
  std::shared_ptr<mailroom::claim_store> claims;  ///< Null disables the sweeper.
  handler_registry handlers;                      ///< At least one handler.
  /// Keeps failed attempts' errors across redeliveries; null means an
  /// in-process `memory_attempt_log` (histories do not survive a restart).
  std::shared_ptr<attempt_log> attempts;
  /// Keeps durable step results; required when a handler was registered
  /// with `handler_registry::add_durable`, unused otherwise.
  std::shared_ptr<checkpoint_store> checkpoints;
};

/// Summary of one sweeper tick, in total and per stage.
struct sweep_summary {
  std::uint64_t found = 0;            ///< Stale or reclaimable records seen (each once).
  std::uint64_t recovered = 0;        ///< Records re-dispatched.
  std::uint64_t transient_errors = 0; ///< Store calls that failed.
  std::vector<std::string> errors;    ///< At most 8 error strings.
  /// Stale pending-dispatch markers (older than `stale_cutoff`).
  std::uint64_t stale_found = 0, stale_recovered = 0, stale_errors = 0;
  /// Non-terminal records whose claim expired (each not already a stale one).
  std::uint64_t reclaimable_found = 0, reclaimable_processed = 0, reclaimable_errors = 0;
};

/// How an engine ended.
struct engine_exit {
  /// False when the drain deadline forced a hand-back, or work was left.
  bool drained = true;
  /// Messages handed back to the transport at the drain deadline (each also
  /// counted as deferred).
  std::uint64_t handed_back = 0;
  /// Messages still unsettled when the engine stopped (a handler that never
  /// returned): the transport redelivers them after their lease.
  std::uint64_t abandoned = 0;
  /// Why the engine stopped by itself when it could not go on (a child
  /// failing the same way on every restart); empty after a normal stop.
  std::string failure;
};

/// An engine: supervisor, poller, dedupe, workers, dead-letter and sweeper
/// actors over one transport.
///
/// Not copyable or movable: it owns an actor system and threads.
class engine {
public:
  /// Creates an engine; nothing runs until `start`. Throws
  /// `std::invalid_argument` when `parts` lacks a transport or handlers.
  engine(engine_config config, engine_parts parts);

  /// Stops the engine (as `stop`) if it still runs.
  ~engine();

  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  /// Spawns the actors and starts polling.
  void start();

  /// Begins the drain and returns at once: polling stops, in-flight work
  /// finishes until the drain deadline, the rest is handed back. Safe to call
  /// from any thread, more than once.
  void request_stop();

  /// Waits until the engine stopped (drained, or a finite source exhausted),
  /// at most `timeout`. Returns true when it stopped.
  bool wait_for(std::chrono::milliseconds timeout);

  /// Requests a stop and waits for it; returns how the engine ended.
  engine_exit stop();

  /// Returns true once the engine has stopped.
  bool stopped() const;

  /// Returns a copy of the counters.
  metrics_snapshot metrics() const;

  /// Returns the summary of the latest sweeper tick.
  sweep_summary last_sweep() const;

  /// Kills worker `index` as a crash would (fault injection for tests); the
  /// supervisor restarts it with backoff and the sweeper recovers its work.
  void inject_worker_crash(std::uint32_t index);

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace mailroom
