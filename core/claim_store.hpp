#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/envelope.hpp"
#include "core/idempotency_store.hpp"
#include "core/io_result.hpp"

namespace mailroom {

/// A message that was dispatched and not yet settled, as the sweeper sees it.
struct dispatch_record {
  envelope message;                  ///< The message, to re-dispatch it.
  fencing_token token = 0;           ///< Token of the claim it was dispatched under.
  clock::time_point dispatched{};    ///< When the pending-dispatch marker was written.
  clock::time_point claim_expires{}; ///< When the claim stops fencing others out.
  /// The key the record is filed under: the message's dedupe key
  /// (`dedupe_key`); empty means the message's idempotency key.
  std::string key;

  /// Returns the key the record is filed under.
  const std::string& filed_under() const { return key.empty() ? message.key : key; }
};

/// One terminal mark of a batch.
struct terminal_mark {
  std::string_view key; ///< Idempotency key of the record.
  fencing_token token;  ///< Token the record must still carry.
};

/// Recovery seam: remembers dispatched work until it is settled.
///
/// Dedupe writes a pending-dispatch marker (with the claim's expiry) for every
/// message it dispatches; the worker marks it terminal when the message is
/// settled. What is left behind by a crashed worker is found by the sweeper.
///
/// A store holds the records of one source (transport, stream or topic,
/// consumer group: `transport::source_id`): a sweeper lists only what its own
/// transport delivered, so a crashed deployment's work is never run by the
/// handler of another deployment sharing the same Redis.
class claim_store {
public:
  virtual ~claim_store() = default;

  /// Records pending-dispatch markers for a whole batch, replacing earlier
  /// records of the same keys.
  /// The batch is taken by value so a caller can move it in.
  virtual io_result record_dispatch(std::vector<dispatch_record> batch) = 0;

  /// Appends to `out` up to `limit` non-terminal records dispatched before
  /// `cutoff`, oldest first. Fails (transient) when the store is down.
  virtual io_result list_stale(clock::time_point cutoff, std::size_t limit,
                               std::vector<dispatch_record>& out) = 0;

  /// Appends to `out` up to `limit` non-terminal records whose claim expired
  /// by `now`, oldest expiry first. Fails (transient) when the store is down.
  virtual io_result list_reclaimable(clock::time_point now, std::size_t limit,
                                     std::vector<dispatch_record>& out) = 0;

  /// Marks the record of `key` terminal if `token` still owns it.
  virtual fence_result mark_terminal(const std::string& key, fencing_token token) = 0;

  /// Marks every record of `batch` terminal whose token still matches, in one
  /// store call where the adapter can. The default makes one call each.
  virtual void mark_terminal_all(const std::vector<terminal_mark>& batch) {
    for (auto& mark : batch) {
      mark_terminal(std::string{mark.key}, mark.token);
    }
  }

  /// Returns the number of non-terminal records.
  virtual std::size_t pending() const = 0;
};

} // namespace mailroom
