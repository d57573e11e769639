#pragma once

#include <string>

#include "clients/redis/redis_connection.hpp"

namespace mailroom {

/// Connects `connection` once and throws std::runtime_error with a clear
/// message when Redis does not answer ("cannot reach Redis at HOST:PORT:
/// ...") or refuses the handshake. Outages during a run are the engine's
/// business; a server that does not answer at start is far more often a
/// wrong address or password than an outage.
void check_redis(redis_connection& connection);

/// Returns "host:port db N, key prefix "P"" for start-up log lines.
std::string redis_description(const redis_settings& s);

} // namespace mailroom
