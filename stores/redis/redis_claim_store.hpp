#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "clients/redis/redis_connection.hpp"
#include "clients/redis/redis_settings.hpp"
#include "core/claim_store.hpp"

namespace mailroom {

/// A claim store on Redis that writes one record per dispatched *batch*, not
/// per message, all under the store's scope (the source it records for, see
/// `transport::source_id`), so two deployments on one Redis never see each
/// other's records.
///
/// Redis holds, per `record_dispatch` call (split into batches of at most 256
/// records and about 4 MiB):
///
/// - `<prefix>claims:<scope>:batch:<id>`: one string with the batch's records
///   (the record count, then each record's key and `encode_dispatch_record`
///   value: every envelope field byte-exact, the token, its times);
/// - a member `<id>` in the sorted sets `<prefix>claims:<scope>:by_dispatch`
///   and `<prefix>claims:<scope>:by_expiry`, scored by the batch's earliest
///   dispatch time and claim expiry;
/// - once some of its records are settled and the batch lingers (or another
///   process settles one of them), `<prefix>claims:<scope>:settled:<id>`: a
///   set of the settled records' keys.
///
/// Why: a record per message cost a SET and two sorted-set members to write
/// and a fenced script call to delete, about 9 of the 18 µs of Redis CPU a
/// deduplicated message cost (bench/README.md, "Redis"). Now a batch is one
/// MULTI/EXEC (SET + two one-member ZADDs) and, when its last record settles,
/// one script call deletes it; a terminal mark costs Redis nothing else.
///
/// The store remembers the records it wrote until they are settled (key,
/// token, batch): `mark_terminal` is fenced by that token here, in the
/// process, and a record written again under the same key replaces the old
/// one here too. What this process settled of a batch that is still open
/// goes to the batch's settled set once the batch is `linger` old (checked
/// on every call), and all of it at `pending` and at destruction, so another
/// process's sweeper, or this one's
/// after a crash, sees at most the last `linger` of settlements as
/// unsettled: those records are dispatched again and dedupe finds them done.
///
/// Records of other processes (a crashed consumer's, or `mailroom sweep`'s
/// view) are listed from Redis less their settled set; marking one terminal
/// (or writing its key again) adds it to that set, and the script that does
/// so deletes the batch once every record of it is settled. The token of a
/// listed record is remembered (up to `max_foreign` of them) to fence those
/// marks.
///
/// A batch whose value is missing or unreadable is purged from the indexes
/// when listed (with its value and settled set), so it never crowds out the
/// records behind it; index members of the earlier one-record-per-message
/// format name no batch and are purged the same way (their records are left
/// to the transport's own redelivery).
///
/// Times cross the boundary as Unix milliseconds (see `unix_time`);
/// rounding errs late: a record is never listed before its time, at most
/// 1 ms after. Records carry no Redis expiry; they leave only by being
/// settled. Thread-safe (one mutex for the bookkeeping, one connection).
/// While Redis is down, writes and lists fail transiently, and the deletions
/// owed are made by the first call that reaches Redis again.
class redis_claim_store final : public claim_store {
public:
  /// How long a batch with settled records may keep them only in memory.
  static constexpr std::chrono::milliseconds linger{1000};
  /// Tokens of listed records of other processes kept to fence their marks.
  static constexpr std::size_t max_foreign = 1 << 16;

  /// Creates a store for the records of source `scope` on its own
  /// connection built from `settings`; it connects on first use.
  redis_claim_store(redis_settings settings, std::string scope);
  ~redis_claim_store() override;

  redis_claim_store(const redis_claim_store&) = delete;
  redis_claim_store& operator=(const redis_claim_store&) = delete;

  /// Writes the batch's records and index entries in one MULTI/EXEC round
  /// trip; a record of a key written before replaces the earlier one.
  io_result record_dispatch(std::vector<dispatch_record> batch) override;

  /// Appends to `out` up to `limit` unsettled records dispatched before
  /// `cutoff`, oldest first.
  io_result list_stale(clock::time_point cutoff, std::size_t limit,
                       std::vector<dispatch_record>& out) override;

  /// Appends to `out` up to `limit` unsettled records whose claim expired
  /// by `now`, earliest expiry first.
  io_result list_reclaimable(clock::time_point now, std::size_t limit,
                             std::vector<dispatch_record>& out) override;

  /// Settles the record of `key` if `token` owns it. Returns `applied`,
  /// `fenced` (no record, or another token) or `unavailable` (what the store
  /// owes Redis, this mark's deletion or an earlier one's, could not be
  /// written; it is kept and written by a later call).
  fence_result mark_terminal(const std::string& key, fencing_token token) override;

  /// Settles a whole batch of marks; at most one script call.
  void mark_terminal_all(const std::vector<terminal_mark>& batch) override;

  /// Returns the number of unsettled records in Redis after writing what
  /// this process settled, or the last number seen while Redis cannot be
  /// asked. Reads every batch of the scope: for tests and operators.
  std::size_t pending() const override;

  /// Returns the Redis key of the string holding batch `id`.
  std::string batch_key(std::string_view id) const;

  /// Returns the connection, to check or force its state.
  redis_connection& connection() { return connection_; }

  /// Returns how many unreadable batches the lists purged so far.
  std::uint64_t purged() const { return purged_.load(std::memory_order_relaxed); }

private:
  struct open_batch;
  struct live_record {
    fencing_token token;
    std::shared_ptr<open_batch> batch;
  };
  struct foreign_record {
    fencing_token token;
    std::string batch;
  };
  /// What the script settling records must do for one batch.
  struct settlement {
    std::string id;
    bool whole = false;             ///< Every record settled: delete the batch.
    std::vector<std::string> keys;  ///< Else: add these to its settled set.
  };

  /// Lists from `index` batches scored below `max_score` and keeps the
  /// records `wanted` picks; sorts by `when` and cuts at `limit`.
  template <class Wanted, class When>
  io_result list(const std::string& index, const std::string& max_score, std::size_t limit,
                 Wanted wanted, When when, std::vector<dispatch_record>& out);

  /// Settles the record of `key` under `token` in the bookkeeping; adds the
  /// Redis work it needs to `owed_`. Returns applied or fenced.
  fence_result settle_locked(std::string_view key, fencing_token token);
  /// Settles every listed record of another process filed under `key`.
  void settle_foreign_locked(const std::string& key);
  /// Adds `key` to what is owed to the settled set of `batch`.
  void owe_foreign_locked(const std::string& batch, const std::string& key);
  /// Remembers a listed record of another process, bounded by `max_foreign`.
  void remember_foreign_locked(const dispatch_record& r, const std::string& batch);
  /// Moves what open batches settled to `owed_`: those older than `linger`,
  /// or all when `all`.
  void collect_lingering_locked(bool all);
  /// Moves what lingered (everything open when `all`) to `owed_` and writes
  /// what is owed. Returns false when that write failed (kept owed).
  bool pay_what_is_owed(bool all);
  /// Runs the settle script for what is owed; keeps it owed on failure.
  bool pay_owed() const;
  /// Returns the Redis key of the settled set of batch `id`.
  std::string settled_key(std::string_view id) const;
  /// Returns whether batch `id` was written by this store.
  bool is_ours(std::string_view id) const;
  /// Removes batches whose value is missing or unreadable.
  void purge(const std::vector<std::string>& ids);

  mutable redis_connection connection_;
  std::string scope_;
  std::string by_dispatch_;
  std::string by_expiry_;
  redis_script_id settle_script_;
  redis_script_id purge_script_;
  redis_script_id pending_script_;
  std::string instance_;                ///< Prefix of this store's batch ids, "-" included.
  std::atomic<std::uint64_t> next_batch_{0};
  std::atomic<std::uint64_t> purged_{0};
  mutable std::atomic<std::size_t> last_pending_{0};

  mutable std::mutex mutex_; // guards everything below
  std::unordered_map<std::string, live_record> live_;
  std::deque<std::shared_ptr<open_batch>> open_; ///< In the order written.
  /// Listed records of other processes by key: a key can have one in
  /// several batches (written again before a crash).
  std::unordered_map<std::string, std::vector<foreign_record>> foreign_;
  std::deque<std::string> foreign_order_; ///< Keys in the order first listed.
  std::size_t foreign_count_ = 0;
  mutable std::vector<settlement> owed_;
  clock::time_point last_linger_check_{};
};

} // namespace mailroom
