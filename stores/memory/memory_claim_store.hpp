#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/claim_store.hpp"

namespace mailroom {

/// An in-process claim store: pending-dispatch records in one hash map.
///
/// Records are keyed by idempotency key; `record_dispatch` replaces the
/// record of a key, and `mark_terminal` erases it when the token matches.
/// The list calls scan every record, which is cheap because the live set is
/// bounded by the engine's in-flight budget. Thread-safe.
///
/// While an outage is simulated (`set_available(false)`), `record_dispatch`
/// and the list calls fail transiently and `mark_terminal` answers
/// `unavailable`; nothing changes.
class memory_claim_store final : public claim_store {
public:
  /// Creates an empty store.
  memory_claim_store() = default;

  memory_claim_store(const memory_claim_store&) = delete;
  memory_claim_store& operator=(const memory_claim_store&) = delete;

  /// Stores each record under its message's key, replacing an older one.
  /// Returns a transient failure, storing nothing, while switched off.
  io_result record_dispatch(std::vector<dispatch_record> batch) override;

  /// Appends to `out` up to `limit` records dispatched before `cutoff`,
  /// oldest dispatch first. Returns a transient failure, appending nothing,
  /// while switched off.
  io_result list_stale(clock::time_point cutoff, std::size_t limit,
                       std::vector<dispatch_record>& out) override;

  /// Appends to `out` up to `limit` records whose claim expired at or before
  /// `now`, earliest expiry first. Returns a transient failure, appending
  /// nothing, while switched off.
  io_result list_reclaimable(clock::time_point now, std::size_t limit,
                             std::vector<dispatch_record>& out) override;

  /// Erases the record of `key` if `token` owns it. Returns `applied`,
  /// `fenced` (no record, or a newer token), or `unavailable` while switched
  /// off.
  fence_result mark_terminal(const std::string& key, fencing_token token) override;

  /// Marks a whole batch terminal under one lock.
  void mark_terminal_all(const std::vector<terminal_mark>& batch) override;

  /// Returns the number of records held (also while switched off).
  std::size_t pending() const override;

  /// Switches outage simulation: while `false`, calls fail as described above.
  void set_available(bool available) { available_.store(available); }

  /// Returns false while an outage is simulated.
  bool available() const { return available_.load(); }

private:
  template <class Include, class Older>
  io_result select(std::size_t limit, std::vector<dispatch_record>& out, Include include,
                   Older older);

  mutable std::mutex mutex_;
  std::unordered_map<std::string, dispatch_record> records_;
  std::atomic<bool> available_{true};
};

} // namespace mailroom
