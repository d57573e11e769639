#pragma once

#include "app/app_config.hpp"
#include "app/transport_registry.hpp"

namespace mailroom {

/// Runs the engine described by `cfg` until it stops; returns the process exit code.
///
/// Every store that is "redis" gets its own connection, opened once before
/// the engine starts: when Redis cannot be reached then (or refuses the
/// handshake: AUTH, SELECT), this throws `std::runtime_error` reading
/// "cannot reach Redis at HOST:PORT: …" (or "Redis at HOST:PORT refused the
/// connection: …"), which `main` prints and turns into exit code 1; nothing
/// has started. An outage after that start is not fatal: dedupe applies
/// `dedupe.on_store_error`, a failed complete hands the message back, the
/// sweeper tries again at its next tick, and the connection reconnects.
///
/// The transport is built by `registry`'s kind named `cfg.transport.type`.
int run_app(const app_config& cfg, const transport_registry& registry = builtin_transports());

} // namespace mailroom
