#pragma once

// One message on its way from dedupe to its settlement, and batches of them.
// Free of CAF, so the queue, the lanes and the settler include it cheaply.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/envelope.hpp"
#include "core/idempotency_store.hpp"
#include "core/outcome.hpp"

namespace mailroom {

class lease_group;

/// One message on its way through dedupe, a lane and settlement.
struct work_item {
  envelope msg;            ///< The message.
  fencing_token token = 0; ///< Claim token; 0 when unclaimed (dedupe off, fail-open).
  bool recorded = false;   ///< A pending-dispatch marker was written for it.
  std::optional<outcome> preset; ///< Outcome decided by the handler or for it.
  /// Hand the message back after this delay without counting a failure
  /// (key in flight elsewhere, store outage under fail-closed, drain).
  std::optional<std::chrono::milliseconds> requeue;
  bool duplicate = false; ///< Acked as a duplicate of a done key.
  /// The key it is claimed, completed and recorded under (`dedupe_key`);
  /// empty while neither dedupe nor the sweeper is on.
  std::string store_key;
  /// The lease group of the poll that delivered it (brokers with leases),
  /// kept renewed until the item is settled; null without leases.
  lease_group* lease = nullptr;
  std::uint32_t lease_index = 0; ///< Its place in `lease`.
  /// Handed back because of the drain deadline (counted as handed back).
  bool drained = false;
  /// Handed back unstarted because an earlier message of its ordering key
  /// is being retried by a transport that redelivers retries in their place
  /// (`transport::retries_keep_order`); nacked after that retry.
  bool behind_retry = false;
  /// Moved into an asynchronous call: the call, not the lane, settles it.
  bool async_started = false;
  /// The number of the poll that received it (`partition_ledger`).
  std::uint64_t epoch = 0;
  /// How long its handler call took, µs; -1 when no call here was timed
  /// (not run, or asynchronous). A batch call's mean per item.
  std::int64_t handler_us = -1;
  /// Its partition was revoked before it ran: dropped unsettled, the
  /// partition's next owner receives it.
  bool revoked = false;
  /// A poison delivery (`envelope::poison`): dead-lettered as rejected.
  bool rejected = false;
  /// Its attempt history could not be loaded (the attempt log was down): the
  /// retry budget then counts its deliveries, so it still ends.
  bool history_unknown = false;
};

/// Returns the failures `item` has had, counting `more` still to come: its
/// recorded errors, or, when its history could not be loaded, at least its
/// deliveries. The retry budget is spent on this number.
inline std::uint32_t failures_of(const work_item& item, std::uint32_t more = 0) {
  auto recorded = static_cast<std::uint32_t>(item.msg.attempt_errors.size()) + more;
  return item.history_unknown && item.msg.attempt > recorded ? item.msg.attempt : recorded;
}

/// A batch of work items, the payload of dispatch and settle messages.
using work_batch = std::vector<work_item>;

} // namespace mailroom
