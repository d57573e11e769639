#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

namespace mailroom::bench {

/// CAF's bare ceilings on this machine: how many "messages" a second plain
/// CAF 0.17 moves when each message costs nothing but actor work.
///
/// Both use a default `caf::actor_system_config` (as the engine does: one
/// scheduler thread per core) and one event-based driver actor that keeps at
/// most `window` messages outstanding, the analogue of engine.max_in_flight.
struct ceiling_settings {
  std::uint64_t messages = 2000000; ///< Messages to move.
  std::uint64_t window = 4096;      ///< Most outstanding at once.
  std::uint32_t actors = 8;         ///< Pool size of the long-lived ceiling.
};

/// Spawn per message: for each message the driver spawns an actor, sends it
/// the message; the actor replies "done" to the driver and quits. At most
/// `window` such actors are alive at once; each reply lets the driver spawn
/// the next. Returns {"kind":"spawn", "msgs_per_s", "seconds", ...}.
nlohmann::json run_spawn_ceiling(const ceiling_settings& s);

/// Long-lived actors: a pool of `actors` event-based actors; the driver sends
/// message i to actor i % actors, which replies "done" to the driver; each
/// reply lets the driver send the next. Returns {"kind":"long_lived", ...}.
nlohmann::json run_long_lived_ceiling(const ceiling_settings& s);

} // namespace mailroom::bench
