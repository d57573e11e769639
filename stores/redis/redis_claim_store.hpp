#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "clients/redis/redis_connection.hpp"
#include "clients/redis/redis_settings.hpp"
#include "core/claim_store.hpp"

namespace mailroom {

/// A claim store on Redis: one string per record and two sorted-set indexes,
/// all under the store's scope (the source it records for, see
/// `transport::source_id`), so two deployments on one Redis never see each
/// other's records.
///
/// A record lives in the string `<prefix>claim:<scope>:<key>` (every envelope
/// field byte-exact, the token first, and its times; see
/// `encode_dispatch_record`).
/// The sorted sets `<prefix>claims:<scope>:by_dispatch` and
/// `<prefix>claims:<scope>:by_expiry` hold the record key scored by dispatch
/// time and by claim expiry, so the sweeper's questions are range queries:
///
/// - `record_dispatch`: one MULTI/EXEC pipeline per batch: a SET per record
///   and one many-member ZADD per index, atomically.
/// - `list_stale` / `list_reclaimable`: `ZRANGEBYSCORE ... LIMIT 0 limit`,
///   then the records with one `MGET` (two round trips per call, whatever
///   the limit). A record settled between the two is skipped; an index
///   entry whose record is missing, unreadable or of the earlier hash format
///   is purged (with its record) by a script that first checks the record is
///   still as read, so such entries never crowd out the records behind them.
/// - `mark_terminal` / `mark_terminal_all`: one Lua script, run by SHA,
///   deletes each record only while its value still starts with the caller's
///   token (compared with GETRANGE, never reading the payload), then the
///   index entries of those deleted in one ZREM per index; a whole batch is
///   one EVALSHA.
///
/// Per message that is one SET, one GETRANGE and one DEL, plus a member in
/// each of four many-member sorted-set commands: the Redis CPU of a record
/// is a small part of a dispatch (bench/README.md, "Redis").
///
/// Times cross the boundary as Unix milliseconds (see `unix_time`): the
/// engine's steady-clock time points are mapped to wall-clock time when
/// written and back when read, so records outlive the process that wrote
/// them. Millisecond rounding always errs late: a record is never listed
/// before its time, at most 1 ms after. Records carry no Redis expiry; they
/// leave only through `mark_terminal`. Thread-safe through its one
/// connection. While Redis is down, writes and lists fail transiently and
/// `mark_terminal` answers `unavailable`.
class redis_claim_store final : public claim_store {
public:
  /// Creates a store for the records of source `scope` on its own
  /// connection built from `settings`; it connects on first use.
  redis_claim_store(redis_settings settings, std::string scope);

  redis_claim_store(const redis_claim_store&) = delete;
  redis_claim_store& operator=(const redis_claim_store&) = delete;

  /// Writes the records and their index entries in one MULTI/EXEC round trip,
  /// replacing earlier records of the same keys.
  io_result record_dispatch(std::vector<dispatch_record> batch) override;

  /// Appends to `out` up to `limit` records dispatched before `cutoff`,
  /// oldest first.
  io_result list_stale(clock::time_point cutoff, std::size_t limit,
                       std::vector<dispatch_record>& out) override;

  /// Appends to `out` up to `limit` records whose claim expired by `now`,
  /// earliest expiry first.
  io_result list_reclaimable(clock::time_point now, std::size_t limit,
                             std::vector<dispatch_record>& out) override;

  /// Deletes the record of `key` if `token` owns it. Returns `applied`,
  /// `fenced` (no record, or another token) or `unavailable`.
  fence_result mark_terminal(const std::string& key, fencing_token token) override;

  /// Marks a whole batch terminal in one EVALSHA; a failure is logged.
  void mark_terminal_all(const std::vector<terminal_mark>& batch) override;

  /// Returns the number of records (ZCARD of the dispatch index), or the
  /// last number seen while Redis cannot be asked.
  std::size_t pending() const override;

  /// Returns the Redis key of the string holding the record of `key`.
  std::string record_key(std::string_view key) const;

  /// Returns the connection, to check or force its state.
  redis_connection& connection() { return connection_; }

  /// Returns how many unreadable records the lists purged so far.
  std::uint64_t purged() const { return purged_.load(std::memory_order_relaxed); }

private:
  /// Lists records of index `index` scored below `max_score` (a ZRANGEBYSCORE
  /// bound), lowest first.
  io_result list(const std::string& index, const std::string& max_score, std::size_t limit,
                 std::vector<dispatch_record>& out);

  /// Removes the unreadable records `keys` (after the two indexes) and
  /// their index entries, each only while it is still as read (`args`).
  void purge(const std::vector<std::string>& keys, const std::vector<std::string>& args);

  /// Runs the terminal script on `batch`; returns per-item results.
  std::vector<fence_result> terminate(const std::vector<terminal_mark>& batch);

  mutable redis_connection connection_;
  std::string scope_;
  std::string by_dispatch_;
  std::string by_expiry_;
  redis_script_id terminal_script_;
  redis_script_id purge_script_;
  std::atomic<std::uint64_t> purged_{0};
  mutable std::atomic<std::size_t> last_pending_{0};
};

} // namespace mailroom
