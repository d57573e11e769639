#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis/redis_connection.hpp"
#include "clients/redis/redis_settings.hpp"
#include "core/idempotency_store.hpp"

namespace mailroom {

/// An idempotency store on Redis: one string key per idempotency key, and
/// per claimed batch a lease and a done bitmap.
///
/// The key `<prefix>idem:<key>` holds the claim that has it,
/// `<instance>-<token>` (16 hex digits naming this store object, then the
/// decimal fencing token), or `done:<claim>:<result>` once completed with a
/// result. A token is `group << 10 | index`: the claims of one call form a
/// group (up to 1024) with one lease, `<prefix>idem-lease:<instance>-<group>`,
/// set for the claim's ttl, and one done bitmap,
/// `<prefix>idem-done:<instance>-<group>`, kept for the result's ttl. A
/// claim is live while its group's lease is and its bit is clear; it is done
/// once its bit (or a done value) is set. The key itself lives for the
/// claim's ttl plus `result_ttl`, so it can say who had it. Each call is one
/// round trip for a whole polled batch, usually:
///
/// - `claim`: per group a `PSETEX` of its lease, then one pipelined `SET key
///   value NX PX ttl GET` per key (NX with GET needs Redis 7.0): fresh when
///   the key was absent, `done` with the stored result for a done value, and
///   in flight for a key repeated in the batch or holding a value of another
///   kind. A key held by another claim takes a second round trip, one script
///   for all of them: done if that claim's bit is set, in flight while its
///   lease lives, else abandoned and claimed now (taken over). A key that
///   already holds the value offered for it is fresh: the same call repeated
///   after a lost reply. The SETs are not one transaction: a key whose SET
///   fails (an error reply) is `unavailable`, the others keep their answers.
/// - `complete`: one Lua script run by SHA for the batch. A completion
///   without a result and for `result_ttl` sets its bit, one `BITOP OR` per
///   group, while the group's lease lives; one with a result (or another ttl)
///   writes `done:<claim>:<result>` over its key while the key holds the
///   claim and the lease lives. Repeating an applied complete answers
///   `applied` and changes nothing. The token alone names the claim.
/// - `release`: deletes the key while its claim is live and not done.
///
/// Fencing is decided inside scripts, so a command that reaches Redis late
/// cannot undo another claim: a claim is taken over only once its lease is
/// gone and its bit clear, and no bit is set nor key written once the lease
/// is gone. A bit belongs to its token, not to the key's current value: a
/// completion without a result is fenced by its lease, so a key deleted
/// under a live claim (an operator's DEL, eviction) and claimed anew is not
/// noticed by the first claim's completion (its `applied` marks only its own
/// claim done). Tokens are unique per store object (a random start, then
/// counting up), so processes and restarts do not share them.
///
/// A claim call whose replies never arrived (timeout, connection lost) may
/// have claimed its keys anyway, under tokens nobody will use; a complete or
/// release that failed leaves its claim live while its message is handed
/// back. The store remembers all of them and, before its next claim reaches
/// Redis, releases every one still live (one script call), so those
/// messages are claimable at once rather than only after `claim_ttl`.
///
/// While Redis cannot be reached every call answers `unavailable` (and
/// returns quickly: see `redis_connection`); a server error reply does too,
/// after a log line. TTLs below 1 ms are raised to 1 ms. Thread-safe
/// through its one connection.
class redis_idempotency_store final : public idempotency_store {
public:
  /// Creates a store on its own connection built from `settings`; it
  /// connects on first use. Results are kept for `result_ttl` (the engine's
  /// `dedupe.result_ttl`); a complete asking another ttl writes its keys.
  /// Below the claims' ttl, a done bit expires before its lease: the key
  /// reads in flight until the lease ends too.
  explicit redis_idempotency_store(
      redis_settings settings,
      std::chrono::milliseconds result_ttl = std::chrono::hours{24});

  redis_idempotency_store(const redis_idempotency_store&) = delete;
  redis_idempotency_store& operator=(const redis_idempotency_store&) = delete;

  /// Claims every key for `ttl` in one pipelined round trip. Returns one
  /// result per key, in order; all `unavailable` when Redis cannot be asked.
  std::vector<claim_result> claim(const std::vector<std::string_view>& keys,
                                  std::chrono::milliseconds ttl) override;

  /// Marks each claimed key done with its result, kept for `ttl`, in one
  /// EVALSHA (a second round trip reads the bits of claims whose lease ran
  /// out). Returns `applied`, `fenced` or `unavailable`, one per item.
  std::vector<fence_result> complete(const std::vector<done_mark>& batch,
                                     std::chrono::milliseconds ttl) override;

  /// Deletes the live claim on `key` if `token` owns it. Returns `applied`,
  /// `fenced` (no claim, another token, or done) or `unavailable`.
  fence_result release(std::string_view key, fencing_token token) override;

  /// Returns the Redis key that holds the state of idempotency key `key`.
  std::string redis_key(std::string_view key) const;

  /// Returns the Redis key of the lease of the group `token` belongs to.
  std::string lease_key_of(fencing_token token) const;
  /// Returns the Redis key of the done bitmap of the group `token` belongs to.
  std::string done_key_of(fencing_token token) const;

  /// Returns the connection, to check or force its state.
  redis_connection& connection() { return connection_; }

  /// Returns the number of claims whose outcome is still unknown.
  std::size_t unresolved_claims() const;

  /// Returns how many such claims were found still held and released.
  std::uint64_t released_unknown_claims() const {
    return released_unknown_.load(std::memory_order_relaxed);
  }

private:
  /// A claim found in a key: the store object that made it and its token.
  struct holder {
    std::string_view instance;
    fencing_token token = 0;
  };
  /// Returns the claim `value` names, if it is one in this layout.
  static std::optional<holder> parse_holder(std::string_view value);
  /// A key of a claim call held by another claim: its place in the call,
  /// the value found (a view into the claim's replies) and who holds it.
  struct contested_claim {
    std::size_t index = 0;
    std::string_view held;
    holder by;
  };
  /// Room for a claim value: 16 hex digits, '-', up to 20 digits.
  using claim_value_buffer = std::array<char, 40>;

  /// Reads the replies of a claim's pipeline into `out`; keys held by other
  /// claims go to `take_over`.
  void read_claim_replies(const std::vector<std::string_view>& keys,
                          std::uint64_t first_group, std::size_t groups,
                          const redis_replies& r, std::chrono::milliseconds ttl,
                          std::vector<claim_result>& out);
  /// Decides the keys at `contested` (held by other claims, at most a
  /// group's worth) in one script.
  void take_over(const std::vector<std::string_view>& keys,
                 const std::vector<contested_claim>& contested,
                 std::chrono::milliseconds ttl, std::vector<claim_result>& out);
  /// Answers the completions at `expired` from their done bits.
  void read_done_bits(const std::vector<done_mark>& batch,
                      const std::vector<std::size_t>& expired,
                      std::vector<fence_result>& out);
  /// Deletes each key still held by its live, unfinished claim; returns how
  /// many, or nothing when Redis could not be asked (`failure` says why).
  std::optional<std::int64_t>
  release_claims(const std::vector<std::pair<std::string, fencing_token>>& claims,
                 failure_class& failure);
  /// Remembers a claim that may be live with nobody to settle it: a claim
  /// whose reply was lost, or the claim of a complete or release that failed.
  void remember_orphan(std::string_view key, fencing_token token);
  /// Releases remembered claims still live.
  void resolve_unknown_claims();
  /// Reserves `n` consecutive group numbers and returns the first.
  std::uint64_t next_groups(std::size_t n);

  /// Returns the value a key holds while `token` of this store claims it,
  /// written into `buf`.
  std::string_view claim_value(fencing_token token, claim_value_buffer& buf) const;
  /// The same, as a string.
  std::string claim_value(fencing_token token) const;
  std::string lease_key(std::string_view instance, std::uint64_t group) const;
  std::string done_key(std::string_view instance, std::uint64_t group) const;

  redis_connection connection_;
  redis_script_id take_over_script_;
  redis_script_id complete_script_;
  redis_script_id release_script_;
  mutable std::mutex unresolved_mutex_;
  std::deque<std::pair<std::string, fencing_token>> unresolved_; // key, token
  std::atomic<std::uint64_t> released_unknown_{0};
  const std::string key_prefix_;   // `<prefix>idem:`
  const std::string lease_prefix_; // `<prefix>idem-lease:`
  const std::string done_prefix_;  // `<prefix>idem-done:`
  const std::string scratch_key_;  // written and deleted inside one script
  const std::string instance_;     // 16 hex digits, random per store object
  const std::chrono::milliseconds result_ttl_;
  std::atomic<std::uint64_t> next_group_; // from a random start, never 0
};

} // namespace mailroom
