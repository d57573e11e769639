#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis/redis_connection.hpp"
#include "clients/redis/redis_settings.hpp"
#include "core/checkpoint_store.hpp"

namespace mailroom {

/// A checkpoint store on Redis: one hash per idempotency key.
///
/// The hash `<prefix>ckpt:<key>` maps step ids to results, byte-exact. A
/// batch is one pipelined round trip: one `HSET` per key with all its steps,
/// then one `PEXPIRE` per key, so the checkpoints of a message expire `ttl`
/// after its last write. The writes of a batch are not one transaction: a
/// failed batch may have stored some steps, which is harmless because each
/// step result stands alone and the caller writes the batch again.
/// Thread-safe through its one connection.
class redis_checkpoint_store final : public checkpoint_store {
public:
  /// Creates a store on its own connection built from `settings`, keeping
  /// checkpoints for `ttl` (default 7 days, at least 1 ms) after a key's
  /// last write; it connects on first use.
  explicit redis_checkpoint_store(redis_settings settings,
                                  std::chrono::milliseconds ttl = std::chrono::hours{24 *
                                                                                     7});

  redis_checkpoint_store(const redis_checkpoint_store&) = delete;
  redis_checkpoint_store& operator=(const redis_checkpoint_store&) = delete;

  /// Writes every checkpoint of the batch in one round trip.
  io_result write(const std::vector<checkpoint>& batch) override;

  /// Stores in `out` the result of `step` for `key` (empty when none) in one
  /// HGET and returns success, or returns the failure (`transient` while
  /// Redis is down) leaving `out` untouched.
  io_result read(const std::string& key, const std::string& step,
                 std::optional<std::string>& out) override;

  /// Replaces `out` with every checkpoint of `key`: HSCAN in pages of about
  /// 1000 fields (one call for the usual small hash), or returns the failure
  /// leaving `out` untouched.
  io_result load(const std::string& key, std::vector<checkpoint>& out) override;

  /// Returns the Redis key of the hash holding the checkpoints of `key`.
  std::string redis_key(std::string_view key) const;

  /// Returns the connection, to check or force its state.
  redis_connection& connection() { return connection_; }

private:
  redis_connection connection_;
  std::string ttl_;
};

} // namespace mailroom
