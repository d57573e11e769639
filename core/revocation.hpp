#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mailroom {

/// One partition of one topic, as a partitioned transport (Kafka) assigns it.
struct topic_partition {
  std::string topic;          ///< Topic name.
  std::int32_t partition = 0; ///< Partition number.
  /// In a revocation: the assignment it ends (`receipt::assignment`); its
  /// deliveries and earlier ones are revoked, a later assignment's are not,
  /// whenever they were polled. 0: the transport does not number its
  /// assignments, and the poll that received a delivery decides (below).
  std::uint64_t assignment = 0;

  friend bool operator==(const topic_partition& a, const topic_partition& b) {
    return a.partition == b.partition && a.topic == b.topic;
  }
};

/// What the engine did about a revocation, once revoke() returns.
struct revocation_report {
  /// Waiting deliveries of those partitions dropped unsettled (never handled,
  /// never acked): the partitions' next owner receives them.
  std::size_t dropped = 0;
  /// Deliveries that were running there and settled within the wait.
  std::size_t settled = 0;
  /// Deliveries still running there when the wait ran out: their settles
  /// come after the partitions were given up (the transport treats them as
  /// stale).
  std::size_t unsettled = 0;

  /// Returns true when nothing of those partitions is left in the engine.
  bool complete() const { return unsettled == 0; }
};

/// The engine's side of a revocation: a transport tells it that deliveries
/// of some partitions are about to stop being this consumer's.
///
/// Called by the transport before it gives the partitions up: from inside
/// `transport::poll` (a rebalance callback served there; the transport
/// leaves the revoked partitions out of that poll's batch), or from a thread
/// of its own that serves the broker. The engine stops dispatching the
/// deliveries of those partitions it received before this call, drops the
/// ones still waiting for a lane, and waits (at most `wait`) until the ones
/// running are settled, so the transport can commit what they acked before
/// the partitions go. Deliveries of them polled after the call (the
/// partition assigned here again) are not affected.
///
/// A transport that revokes from a thread of its own should number its
/// assignments (`topic_partition::assignment`): a poll already under way
/// when it revokes may go on to return deliveries of the partition's next
/// assignment here, and only the number tells them from the old ones.
class revocation_listener {
public:
  virtual ~revocation_listener() = default;

  /// Revokes `partitions` as described above and reports what it did.
  virtual revocation_report revoke(const std::vector<topic_partition>& partitions,
                                   std::chrono::milliseconds wait) = 0;
};

} // namespace mailroom
