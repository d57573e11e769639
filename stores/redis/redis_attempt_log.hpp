#pragma once

#include <chrono>
#include <string>

#include "clients/redis/redis_connection.hpp"
#include "clients/redis/redis_settings.hpp"
#include "core/attempt_log.hpp"

namespace mailroom {

/// An attempt log on Redis: one hash per message with a history.
///
/// The hash `<prefix>attempts:<scope>:<id>` holds `d` (deliveries counted),
/// `e` (the errors, a JSON array) and `f` (first failure, Unix ms), and
/// expires `ttl` after its latest change, so a history whose message was
/// settled elsewhere or deleted from the broker does not stay for ever. Each
/// call is one pipelined round trip for a whole batch: `load` an HMGET per
/// id, `deliver` an HINCRBY + HMGET + PEXPIRE per id, `record` an HSET +
/// PEXPIRE per id, `forget` one DEL. `scope` is the source it keeps
/// histories for (`transport::source_id`), so deployments sharing a server
/// never read each other's. Thread-safe through its one connection.
class redis_attempt_log final : public attempt_log {
public:
  /// Creates a log for source `scope` on its own connection from `settings`,
  /// keeping each history for `ttl` (at least 1 ms).
  redis_attempt_log(redis_settings settings, std::string scope,
                    std::chrono::milliseconds ttl);

  io_result load(const std::vector<std::string_view>& ids,
                 std::vector<std::optional<attempt_history>>& out) override;
  io_result deliver(const std::vector<std::string_view>& ids,
                    std::vector<attempt_history>& out) override;
  io_result record(const std::vector<attempt_entry>& entries) override;
  io_result forget(const std::vector<std::string_view>& ids) override;

  /// Returns the Redis key of the history of `id`.
  std::string key_of(std::string_view id) const;

  /// Returns the connection, to check or force its state.
  redis_connection& connection() { return connection_; }

private:
  redis_connection connection_;
  std::string prefix_; // <prefix>attempts:<scope>:
  std::string ttl_ms_;
};

} // namespace mailroom
