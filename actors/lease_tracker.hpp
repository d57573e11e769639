#pragma once

// Leases of the deliveries an engine holds, for brokers that hand a delivery
// to another consumer when its lease runs out (SQS visibility, the memory
// transport's visibility timeout, a stream entry's idle time). Every poll
// opens one group with the receipts it delivered; settling an item lets go
// of its place; the lease keeper renews what is still held, whether it waits
// in the queue, runs in a handler or waits for its dead-letter write.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "actors/work_item.hpp"
#include "core/envelope.hpp"
#include "core/transport.hpp"

namespace mailroom {

class lease_tracker;

/// The receipts of one poll and which of them are still held.
class lease_group {
public:
  /// Creates a group of `tracker` for `receipts`, leased until `expires`.
  lease_group(lease_tracker& tracker, std::vector<receipt> receipts,
              clock::time_point expires);

  /// Lets go of receipt `index`: its item was settled (or handed back). The
  /// last release closes the group.
  void release(std::uint32_t index);

  /// Lets go of every receipt (its poll was given up on, unsettled: the
  /// broker redelivers it once its lease runs out).
  void release_all();

  /// Returns the number of receipts still held.
  std::size_t held() const { return held_.load(std::memory_order_acquire); }

private:
  friend class lease_tracker;
  enum : std::uint8_t { holding = 0, released = 1, lost = 2 };

  lease_tracker& tracker_;
  const std::vector<receipt> receipts_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> state_;
  std::atomic<std::size_t> held_;
  clock::time_point expires_; // guarded by the tracker's mutex
  std::size_t position_ = 0;  // in the tracker's list; guarded likewise
};

/// Lets go of the lease of `item`, if it has one.
inline void release_lease(const work_item& item) {
  if (item.lease != nullptr) {
    item.lease->release(item.lease_index);
  }
}

/// What one renewal pass did.
struct lease_renewal {
  std::size_t extended = 0; ///< Receipts whose lease was extended.
  std::size_t lost = 0;     ///< Receipts the broker no longer counts as ours.
  io_result status;         ///< The extend call's result (the last failure).
};

/// Every lease group of one engine.
///
/// Thread-safe. A group is freed when its last receipt is released (a
/// renewal in progress keeps it alive until it is done), so an item's raw
/// pointer stays valid until that item is released.
class lease_tracker {
public:
  /// Creates a tracker for a transport with `terms`.
  explicit lease_tracker(lease_terms terms) : terms_(terms) {}

  /// Opens a group for the receipts of `batch[first..]`, delivered at `now`;
  /// item `first + i` holds index `i`. Returns the group, or nullptr when
  /// there is nothing to track.
  lease_group* open(const envelope_batch& batch, std::size_t first, clock::time_point now);

  /// Extends the leases of every held receipt whose lease runs out within the
  /// renewal margin. Not to be called from two threads at once.
  lease_renewal renew(transport& t, clock::time_point now);

  /// Returns the number of receipts held over all groups.
  std::size_t held() const;

  /// Returns the terms the tracker renews by.
  const lease_terms& terms() const { return terms_; }

  /// Returns the number of open groups.
  std::size_t groups() const;

private:
  friend class lease_group;
  void close(lease_group* group);

  const lease_terms terms_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<lease_group>> groups_;
};

} // namespace mailroom
