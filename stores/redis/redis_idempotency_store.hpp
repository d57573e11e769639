#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis/redis_connection.hpp"
#include "clients/redis/redis_settings.hpp"
#include "core/idempotency_store.hpp"

namespace mailroom {

/// An idempotency store on Redis: one string key per idempotency key.
///
/// The key `<prefix>idem:<key>` holds the decimal fencing token of a live
/// claim (`SET NX PX ttl`), or `done:<token>:<result>` once completed; Redis
/// expiry ends both. Each call is one round trip for a whole polled batch:
///
/// - `claim`: one pipelined `SET key token NX PX ttl GET` per key with a
///   fresh token (NX with GET needs Redis 7.0): fresh when the key was
///   absent, else `done` with the stored result, else `in_flight`. A key
///   repeated in one batch is fresh once and in_flight after. A key that
///   already holds the token offered for it is fresh: the same call
///   repeated after a lost reply. The SETs are not one transaction: a key
///   whose SET fails (an error reply) is `unavailable`, the others keep
///   their answers.
/// - `complete`: a Lua script run by SHA, atomic for the batch, that stores
///   the result only while the key still holds the caller's token;
///   repeating an applied complete answers `applied` and changes nothing
///   (the token stays in the done value for that).
/// - `release`: compare-and-delete of a live claim.
///
/// A claim call whose replies never arrived (timeout, connection lost) may
/// have claimed its keys anyway, under tokens nobody will use; a complete or
/// release that failed leaves its claim live while its message is handed
/// back. The store remembers all of them and, before its next claim reaches
/// Redis, releases every one still holding its token (one script call), so
/// those messages are claimable at once rather than only after `claim_ttl`.
///
/// Tokens are random 63-bit numbers, never 0, from a per-store
/// `std::mt19937_64` seeded by `std::random_device`. While Redis cannot be
/// reached every call answers `unavailable` (and returns quickly: see
/// `redis_connection`); a server error reply does too, after a log line.
/// TTLs below 1 ms are raised to 1 ms. Thread-safe through its one
/// connection.
class redis_idempotency_store final : public idempotency_store {
public:
  /// Creates a store on its own connection built from `settings`; it
  /// connects on first use.
  explicit redis_idempotency_store(redis_settings settings);

  redis_idempotency_store(const redis_idempotency_store&) = delete;
  redis_idempotency_store& operator=(const redis_idempotency_store&) = delete;

  /// Claims every key for `ttl` in one pipelined round trip. Returns one
  /// result per key, in order; all `unavailable` when Redis cannot be asked.
  std::vector<claim_result> claim(const std::vector<std::string_view>& keys,
                                  std::chrono::milliseconds ttl) override;

  /// Marks each claimed key done with its result, kept for `ttl`, in one
  /// EVALSHA. Returns `applied`, `fenced` or `unavailable`, one per item.
  std::vector<fence_result> complete(const std::vector<done_mark>& batch,
                                     std::chrono::milliseconds ttl) override;

  /// Deletes the live claim on `key` if `token` owns it. Returns `applied`,
  /// `fenced` (no claim, another token, or done) or `unavailable`.
  fence_result release(std::string_view key, fencing_token token) override;

  /// Returns the Redis key that holds the state of idempotency key `key`.
  std::string redis_key(std::string_view key) const;

  /// Returns the connection, to check or force its state.
  redis_connection& connection() { return connection_; }

  /// Returns the number of claims whose outcome is still unknown.
  std::size_t unresolved_claims() const;

  /// Returns how many such claims were found still held and released.
  std::uint64_t released_unknown_claims() const {
    return released_unknown_.load(std::memory_order_relaxed);
  }

private:
  /// Remembers a claim that may be live with nobody to settle it: a claim
  /// whose reply was lost, or the claim of a complete or release that failed.
  void remember_orphan(std::string_view key, fencing_token token);
  /// Releases remembered claims still holding their tokens.
  void resolve_unknown_claims();
  /// Returns a fresh token, never 0.
  fencing_token next_token();

  redis_connection connection_;
  redis_script_id complete_script_;
  redis_script_id release_script_;
  redis_script_id release_all_script_;
  mutable std::mutex unresolved_mutex_;
  std::deque<std::pair<std::string, fencing_token>> unresolved_;
  std::atomic<std::uint64_t> released_unknown_{0};
  const std::string key_prefix_; // `<prefix>idem:`
  std::mutex rng_mutex_;
  std::mt19937_64 rng_;
};

} // namespace mailroom
