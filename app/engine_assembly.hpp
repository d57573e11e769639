#pragma once

// Builds what `mailroom run` and `mailroom sweep` both start: the configured
// transport, the stores the configuration asks for, and the handlers.

#include "app/app_config.hpp"
#include "app/transport_registry.hpp"
#include "mailroom/engine.hpp"

namespace mailroom {

/// An engine's parts and settings, built from a configuration.
struct assembled_engine {
  transport_instance instance; ///< The transport (and its run source, if any).
  engine_parts parts;          ///< Transport, stores and handlers.
  engine_config config;        ///< The engine settings, the transport's ordering applied.
};

/// Builds the parts `cfg` describes with `registry`'s transport kind. Every
/// store that is "redis" gets its own connection, checked once: throws
/// std::runtime_error ("cannot reach Redis at ...") when it does not answer,
/// and when the transport cannot start.
assembled_engine assemble_engine(const app_config& cfg, const transport_registry& registry);

} // namespace mailroom
