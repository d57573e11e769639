#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "core/envelope.hpp"
#include "core/idempotency_store.hpp"

namespace mailroom {

/// An in-process idempotency store: claims and results in sharded, flat,
/// open-addressing hash tables.
///
/// A key is *fresh* when it has no entry or its entry expired (a new claim
/// with a new token is made), *done* while a completed result is alive, and
/// *in_flight* while a claim is alive. `complete` applies only with the token
/// of the live claim (repeating a complete that was applied answers
/// `applied` and changes nothing); `release` deletes only a live claim with
/// a matching token. An expired claim fences its own token too, as a Redis
/// key that timed out would.
///
/// Layout, per shard: a linear-probing table of 8-byte slots (32 bits of the
/// key's hash and an entry index) over a chunked array of 64-byte entries
/// (key, token, expiry, state) recycled through a free list, so a lookup
/// costs about one cache miss for the slot and one for the entry, and a key
/// of up to 15 bytes costs no allocation. Non-empty results live beside the
/// entries and are touched only when there is one.
///
/// Memory is bounded by the TTLs: each shard keeps one FIFO of entry indices
/// per TTL value, in expiry order (all its entries got the same TTL from a
/// monotonic clock). Every call erases the expired entries at the FIFO heads
/// of the shards it touches, at most about twice as many as it has items
/// there, so no call stalls on a backlog; `size` erases them all. When an
/// entry moves to another FIFO (claim to done, a re-claim) or is released,
/// its old FIFO item is marked stale in place; a FIFO with more than
/// `live + 256` stale items is compacted, so it holds at most
/// `2 * live + 256` items. The table and the entries keep the capacity of
/// the peak live count; the FIFOs shrink back. About 100-130 bytes per live
/// key, plus the key itself beyond 15 bytes and the result if not empty.
///
/// Time must not go backwards: each shard treats a clock reading older than
/// one it has seen as that one. Thread-safe; a batch locks each shard it
/// touches once, visiting shards that another thread holds last.
class memory_idempotency_store final : public idempotency_store {
public:
  /// The time source; tests pass a fake one to move time.
  using clock_fn = std::function<clock::time_point()>;

  /// Creates an empty store with `shards` shards (at least 1) reading time
  /// from `now` (steady_clock::now when empty). Few shards keep each shard's
  /// share of a batch large enough to overlap its cache misses, yet let two
  /// threads work at once; 4 measured best.
  explicit memory_idempotency_store(clock_fn now = {}, std::size_t shards = 4);

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
  std::vector<fence_result> complete(const std::vector<done_mark>& batch,
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
  struct shard;

  /// Returns the shard owning a key of hash `hash`.
  shard& shard_of(std::uint64_t hash) const;
  /// Calls `visit(shard, i, hash, now)` for each batch item `i` in batch order
  /// within a shard, locking each shard once and erasing a bounded number of
  /// its expired entries first. `key_of(i)` is the key of item `i`;
  /// `allocates` tells that visits may make new entries (claims).
  template <class KeyOf, class Visit>
  void visit_batch(std::size_t n, bool allocates, KeyOf key_of, Visit visit);

  clock_fn now_;
  std::unique_ptr<shard[]> shards_;
  std::size_t shard_count_;
  std::atomic<bool> available_{true};
  std::atomic<fencing_token> next_token_{1};
};

} // namespace mailroom
