#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/retry_policy.hpp"

namespace mailroom {

/// Settings of one Redis connection. Every field has its default and unit
/// beside it; the TOML `[redis]` section mirrors them.
///
/// The password is never part of the settings: `password_env` names the
/// environment variable that holds it, read at each (re)connect and never
/// logged, copied into an error text or kept after the handshake.
struct redis_settings {
  std::string host = "127.0.0.1"; ///< Server host name or address.
  int port = 6379;                ///< Server TCP port.
  int db = 0;                     ///< Database index chosen with SELECT after connecting.
  /// ACL user for `AUTH user password`; empty authenticates the default user
  /// with `AUTH password` (a `requirepass` server).
  std::string username;
  /// Name of the environment variable holding the password; empty sends no
  /// AUTH at all. A name given but unset is a fatal configuration error.
  std::string password_env;
  std::chrono::milliseconds connect_timeout{1000}; ///< TCP connect bound, ms (≥ 1).
  /// Bound of each socket read or write of a command, ms (≥ 1). A timed-out
  /// call fails transiently and drops the connection.
  std::chrono::milliseconds command_timeout{1000};
  bool keep_alive = true; ///< Enables TCP keep-alive (hiredis' default interval).
  /// Prefix of every key a store writes, so several deployments or tests can
  /// share one server. Stores add their own namespace after it
  /// (`idem:`, `claim:`, `claims:`, `ckpt:`, `attempts:`).
  std::string key_prefix = "mailroom:";
  /// Backoff between reconnect attempts after a failed connect: full jitter,
  /// delay uniform in `[0, min(cap, base·2^(failures-1))]`. While it runs,
  /// calls fail at once as transient instead of blocking (`max_attempts` is
  /// unused: a connection never gives up).
  retry_settings reconnect{std::chrono::milliseconds{50}, std::chrono::milliseconds{2000},
                           0};
};

} // namespace mailroom
