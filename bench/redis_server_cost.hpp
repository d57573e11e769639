#pragma once

// What redis-server spent on a measured run: its CPU time (INFO cpu) and the
// per-command breakdown (INFO commandstats), taken as a difference between
// two snapshots so nothing else on the server (a pre-fill) is counted.

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace mailroom::bench {

/// One snapshot of a redis-server's CPU and command counters.
struct redis_server_snapshot {
  double cpu_s = 0; ///< used_cpu_user + used_cpu_sys, seconds.
  struct command {
    std::uint64_t calls = 0;
    double usec = 0;
  };
  std::map<std::string, command> commands; ///< By command name (lower case).
};

/// Takes a snapshot of the server on 127.0.0.1:`port`. Throws
/// std::runtime_error when it cannot be asked.
redis_server_snapshot snapshot_redis_server(int port);

/// Returns what the server spent between `before` and `after` for
/// `messages` messages: {"cpu_us_per_msg", "command_us_per_msg",
/// "commands": [{"command", "calls", "calls_per_msg", "usec_per_call",
/// "us_per_msg"}...]} (commands by cost, highest first).
nlohmann::json redis_server_cost(const redis_server_snapshot& before,
                                 const redis_server_snapshot& after, std::uint64_t messages);

} // namespace mailroom::bench
