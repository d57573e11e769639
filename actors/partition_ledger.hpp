#pragma once

// What the engine holds of each partition, and which partitions were revoked:
// the ledger behind `revocation_listener`. Only deliveries of partitioned
// transports (receipt.partition >= 0) are counted, so the others pay one
// comparison per message and nothing else.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "actors/work_item.hpp"
#include "core/revocation.hpp"

namespace mailroom {

/// Counts of held deliveries per partition, and revocation marks. Thread-safe.
///
/// Every delivery is stamped with the number of the poll that received it
/// (its epoch). Revoking a partition from inside poll N makes every delivery
/// of it stamped before N revoked (from another thread: up to N): dedupe and
/// the lanes drop those instead of dispatching or running them. A delivery
/// of it from a later poll (the partition assigned here again) is not.
///
/// Where the transport numbers its assignments, the number decides instead:
/// a revocation from another thread cannot tell by epochs the old
/// assignment's deliveries from those of the next one that a poll under way
/// returns (a Kafka eager rebalance revokes and assigns within one poll's
/// wait), and dropping those would stall the partition for good.
class partition_ledger {
public:
  /// Counts `batch[first..]` as held (its partitioned deliveries).
  void enter(const envelope_batch& batch, std::size_t first = 0);

  /// Counts `item` as no longer held.
  void leave(const work_item& item) {
    if (item.msg.handle.partition >= 0) {
      leave_partitioned(item.msg);
    }
  }

  /// Counts `msg` as no longer held (a delivery that never became a work item).
  void leave(const envelope& msg) {
    if (msg.handle.partition >= 0) {
      leave_partitioned(msg);
    }
  }

  /// Starts the next poll, on the poller's thread; returns its number.
  std::uint64_t begin_poll();

  /// Marks `partitions` revoked for every delivery received before now:
  /// called from inside a poll (on the poller's thread), that is every
  /// earlier poll's (the transport leaves the revoked partitions out of the
  /// one it is making); from any other thread, every poll's so far.
  void revoke(const std::vector<topic_partition>& partitions);

  /// Returns true when `item`'s delivery belongs to a partition revoked
  /// after the poll that received it.
  bool revoked(const work_item& item) const {
    return item.msg.handle.partition >= 0 && any_revoked_.load(std::memory_order_acquire) &&
           revoked_slow(item);
  }

  /// Returns how many deliveries of `partitions` are held.
  std::size_t held(const std::vector<topic_partition>& partitions) const;

  /// Waits until none of `partitions` is held or `deadline` passes; returns
  /// how many are still held.
  std::size_t wait_until_released(const std::vector<topic_partition>& partitions,
                                  clock::time_point deadline);

private:
  struct partition_hash {
    std::size_t operator()(const topic_partition& p) const noexcept;
  };

  void leave_partitioned(const envelope& msg);
  bool revoked_slow(const work_item& item) const;
  std::size_t held_locked(const std::vector<topic_partition>& partitions) const;

  mutable std::mutex mutex_;
  std::condition_variable released_;
  std::unordered_map<topic_partition, std::size_t, partition_hash> held_;
  struct revocation_mark {
    std::uint64_t since_epoch = 0; // deliveries of earlier polls are revoked
    std::uint64_t assignment = 0;  // deliveries of it and earlier ones are; 0: unnumbered
  };
  std::unordered_map<topic_partition, revocation_mark, partition_hash> revoked_;
  std::atomic<bool> any_revoked_{false};
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<std::thread::id> poller_{};
};

} // namespace mailroom
