#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis/redis_pipeline.hpp"
#include "clients/redis/redis_reply.hpp"
#include "clients/redis/redis_settings.hpp"
#include "core/envelope.hpp"
#include "core/io_result.hpp"
#include "core/retry_policy.hpp"

namespace mailroom {

/// One Redis command: its name and arguments, each sent byte-exact through
/// `redisCommandArgv`-style argv (never a format string), so spaces, `\r\n`,
/// `%` and NUL bytes are data, not syntax.
using redis_command = std::vector<std::string>;

/// What a round trip answers: its status and, when the server was reached,
/// one reply per command sent.
struct redis_replies {
  /// `none` when every reply arrived and none is an error reply;
  /// `transient` on an I/O failure, a timeout or while reconnecting (then
  /// `replies` is empty); `fatal` for a server error reply (the replies are
  /// kept, the text is the first error) or a configuration error such as a
  /// refused AUTH.
  io_result status;
  std::vector<reply_ptr> replies; ///< One reply per command, in order.

  /// Returns true when `status` is a success.
  explicit operator bool() const { return static_cast<bool>(status); }
};

/// Names a Lua script registered with `redis_connection::add_script`.
using redis_script_id = std::size_t;

/// Frees a hiredis context with `redisFree`.
struct redis_context_deleter {
  /// Closes the socket of `context` and frees it.
  void operator()(redisContext* context) const noexcept;
};

/// A synchronous hiredis connection that reconnects by itself.
///
/// Every command is encoded as RESP with explicit lengths (see
/// `redis_pipeline`); a call is one pipelined round trip. Failures follow their class:
///
/// - I/O errors (refused, reset, EOF, timeout) drop the socket and are
///   `transient`. A call that finds its established connection broken (Redis
///   restarted since the last call) reconnects at once and retries its
///   commands once; every command the stores send is safe to repeat. A
///   timed-out call is not repeated, so one call blocks at most about
///   `connect_timeout + 2·command_timeout`.
/// - After a failed connect, reconnecting waits for a full-jitter backoff
///   from `settings.reconnect`; meanwhile calls fail at once (`transient`)
///   without touching the network, so an outage never stalls the caller.
/// - Server error replies are `fatal` and never retried, except `NOSCRIPT`
///   from `evalsha`, which loads the script again and retries once.
///
/// The handshake (AUTH, SELECT, PING) is one pipelined round trip. The
/// password is read from the environment for it and wiped after; it never
/// reaches a log line or an error text.
///
/// Thread-safe: a mutex serialises calls, so one connection serves one
/// store; give each store its own connection for parallel calls. Neither
/// copyable nor movable: it owns a live socket.
class redis_connection {
public:
  /// Creates a connection with `settings`; it connects on first use (or on
  /// `connect()`).
  explicit redis_connection(redis_settings settings);

  /// Closes the socket.
  ~redis_connection();

  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;
  redis_connection(redis_connection&&) = delete;
  redis_connection& operator=(redis_connection&&) = delete;

  /// Connects now unless connected, ignoring any reconnect backoff. Returns
  /// `fatal` for a configuration error (password variable unset, AUTH or
  /// SELECT refused, authentication required) and `transient` when the
  /// server cannot be reached.
  io_result connect();

  /// Sends `commands` in one round trip and returns their replies. The
  /// caller may reuse `commands` for its next batch.
  redis_replies send(const redis_pipeline& commands);

  /// Sends `commands` in one pipelined round trip and returns their replies.
  redis_replies pipeline(const std::vector<redis_command>& commands);

  /// Sends one command and returns its reply (a pipeline of one).
  redis_replies command(const redis_command& command);

  /// Registers a Lua script and returns its id for `evalsha`. The script is
  /// loaded with SCRIPT LOAD on first use and run by SHA after.
  redis_script_id add_script(std::string source);

  /// Runs script `script` with `keys` and `args` by EVALSHA in one round
  /// trip. When the server does not know the script (first use after a
  /// restart) it is loaded again and run once more in the same round trip.
  /// Returns exactly one reply on success.
  redis_replies evalsha(redis_script_id script, const std::vector<std::string>& keys,
                        const std::vector<std::string>& args);

  /// Returns `settings().key_prefix` followed by `name`.
  std::string key(std::string_view name) const;

  /// Returns the settings this connection was built from.
  const redis_settings& settings() const { return settings_; }

  /// Returns true while a socket is open and healthy as far as known.
  bool connected() const;

  /// Returns the number of round trips made so far (handshakes included), so
  /// tests can check that a batch costs one.
  std::uint64_t round_trips() const {
    return round_trips_.load(std::memory_order_relaxed);
  }

private:
  using context_ptr = std::unique_ptr<redisContext, redis_context_deleter>;

  struct script {
    std::string source;
    std::string sha;
  };

  /// Connects unless connected; honours the reconnect backoff when `gated`.
  io_result ensure_connected(bool gated);
  /// Opens a socket and runs the handshake; leaves `context_` set on success.
  io_result open();
  /// Sends `commands` and reads one reply each on the open socket. On an
  /// I/O failure sets `*timed_out` and returns transient; the caller drops.
  io_result exchange(const redis_pipeline& commands, std::vector<reply_ptr>& out,
                     bool* timed_out);
  /// Runs `commands` in one round trip with the reconnect rules above.
  redis_replies run(const redis_pipeline& commands);
  /// Closes the socket after an I/O failure described by `why`.
  void drop(const std::string& why);
  /// Counts a call that could not reach the server (starts an outage).
  void note_failed_call();
  /// Ends an outage with one log line: the server answered.
  void note_answered();
  /// Returns "host:port" for messages.
  std::string where() const;

  const redis_settings settings_;
  mutable std::mutex mutex_;
  context_ptr context_;
  std::vector<script> scripts_;
  retry_policy backoff_;
  std::uint32_t failures_ = 0;   // consecutive failed connects
  clock::time_point retry_at_{}; // no connect attempt before this
  io_result last_failure_;       // why the last connect failed
  // An outage runs from the first failed call to the first call answered
  // again: one line when it starts, one (with its length) when it ends.
  clock::time_point outage_since_{};
  std::uint64_t outage_failed_calls_ = 0;
  std::atomic<std::uint64_t> round_trips_{0};
};

} // namespace mailroom
