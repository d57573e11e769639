#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "core/envelope.hpp"
#include "core/idempotency_store.hpp"

namespace mailroom {

/// An in-process idempotency store: claims and results in sharded hash maps.
///
/// A key is *fresh* when it has no entry or its entry expired (a new claim
/// with a new token is made), *done* while a completed result is alive, and
/// *in_flight* while a claim is alive. `complete` applies only with the token
/// of the live claim (repeating a complete that was applied answers
/// `applied` and changes nothing); `release` deletes only a live claim with
/// a matching token. An expired claim fences its own token too, as a Redis
/// key that timed out would.
///
/// Memory is bounded by the TTLs: each shard keeps one expiry-ordered list
/// per TTL value, and every call erases the expired entries at the heads of
/// the lists of the shards it touches. Thread-safe; a batch locks each shard
/// it touches once.
class memory_idempotency_store final : public idempotency_store {
public:
  /// The time source; tests pass a fake one to move time.
  using clock_fn = std::function<clock::time_point()>;

  /// Creates an empty store with `shards` shards (at least 1) reading time
  /// from `now` (steady_clock::now when empty).
  explicit memory_idempotency_store(clock_fn now = {}, std::size_t shards = 16);

  /// Releases every entry.
  ~memory_idempotency_store() override;

  memory_idempotency_store(const memory_idempotency_store&) = delete;
  memory_idempotency_store& operator=(const memory_idempotency_store&) = delete;

  /// Claims each key for `ttl`, in order: a key repeated in one batch is
  /// fresh once and in_flight after. Returns one result per key; all
  /// `unavailable` while the store is switched off.
  std::vector<claim_result> claim(const std::vector<std::string_view>& keys,
                                  std::chrono::milliseconds ttl) override;

  /// Marks each claimed key done with its result, kept for `ttl`. Returns
  /// `applied`, `fenced` (token not of the live claim) or, while switched
  /// off, `unavailable`, one per completion.
  std::vector<fence_result> complete(const std::vector<completion>& batch,
                                     std::chrono::milliseconds ttl) override;

  /// Deletes the live claim on `key` if `token` owns it. Returns `applied`,
  /// `fenced`, or `unavailable` while switched off.
  fence_result release(std::string_view key, fencing_token token) override;

  /// Switches outage simulation: while `false`, every call answers
  /// `unavailable` and changes nothing.
  void set_available(bool available) { available_.store(available); }

  /// Returns false while an outage is simulated.
  bool available() const { return available_.load(); }

  /// Erases every expired entry, then returns the number of entries left.
  std::size_t size();

private:
  struct entry;
  struct ttl_list;
  struct shard;

  /// Returns the shard owning `key`, storing its number in `*index` if given.
  shard& shard_of(std::string_view key, std::size_t* index = nullptr) const;
  /// Calls `visit(shard, i, now)` for each batch item, locking each shard once,
  /// with the item's key copied into the shard's scratch buffer.
  template <class KeyOf, class Visit>
  void visit_batch(std::size_t n, KeyOf key_of, Visit visit);
  /// Erases the entries of `s` that expired by `now`.
  static void prune(shard& s, clock::time_point now);
  /// Moves `e` into the expiry list of `ttl`, expiring at `expires`.
  static void place(shard& s, entry& e, std::chrono::milliseconds ttl,
                    clock::time_point expires);
  /// Takes `e` out of its expiry list.
  static void unlink(entry& e);

  clock_fn now_;
  std::unique_ptr<shard[]> shards_;
  std::size_t shard_count_;
  std::atomic<bool> available_{true};
  std::atomic<fencing_token> next_token_{1};
};

} // namespace mailroom
