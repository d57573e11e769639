#pragma once

// One assigned partition as the Kafka transport keeps it between the
// librdkafka consumer and the engine: the records fetched and not yet handed
// out or handed back to wait for a retry, the offsets not yet settled (so a
// commit never passes one), and what a waiting retry holds back.

#include <cstdint>
#include <deque>
#include <set>
#include <string>

#include "core/engine_config.hpp"
#include "core/envelope.hpp"

namespace mailroom::kafka {

/// Records of one partition between fetch and commit. Not thread-safe: the
/// transport guards it.
///
/// Offsets enter unsettled when fetched and leave when settled (acked, or
/// dead-lettered once the record is written); the commit point is the
/// lowest unsettled offset, or one past the highest fetched when none is
/// unsettled, so out-of-order settling never commits past unsettled work.
///
/// A message handed back (a retry, or one the engine gave back unstarted)
/// goes back in at its offset with the time it is due. Until then it holds
/// back what its ordering mode orders it with: the rest of the partition
/// (per_partition), the later records of its key (per_key: other keys go
/// on), or nothing (unordered).
class partition_buffer {
public:
  /// A buffer of assignment `generation`, holding back by `mode`.
  partition_buffer(std::uint64_t generation, ordering_mode mode)
      : generation_(generation), mode_(mode) {}

  /// Returns the assignment this buffer belongs to.
  std::uint64_t generation() const { return generation_; }

  /// Appends a fetched record (offsets increase) and counts it unsettled.
  void push(envelope msg);

  /// Moves up to `max` records due by `now` that nothing holds back into
  /// `out`, in offset order. Returns how many it moved.
  std::size_t take(std::size_t max, envelope_batch& out,
                   clock::time_point now = clock::time_point::max());

  /// Settles `offset`. Returns false when it was not unsettled (stale).
  bool settle(std::int64_t offset);

  /// Puts `msg` (handed out, unsettled) back at its offset, due at `due`.
  /// Returns false when its offset is not unsettled (stale).
  bool requeue(envelope msg, clock::time_point due);

  /// Returns the earliest time a waiting record becomes due, or
  /// time_point::max() when none waits for a time.
  clock::time_point next_due() const;

  /// Drops the records not yet handed out (a revocation: the partition's
  /// next owner fetches them again); their offsets stay unsettled. Returns
  /// how many it dropped.
  std::size_t drop_buffered();

  /// Returns true when the offset is fetched and not yet settled.
  bool unsettled(std::int64_t offset) const { return unsettled_.count(offset) != 0; }

  /// Returns the offset a commit may name now, or -1 when nothing was fetched.
  std::int64_t commit_point() const;

  /// Returns how many records wait to be handed out.
  std::size_t buffered() const { return buffer_.size(); }

  /// Returns how many offsets are unsettled.
  std::size_t unsettled_count() const { return unsettled_.size(); }

  /// The offset committed last (-1 before the first commit).
  std::int64_t committed = -1;
  /// True while the consumer has the partition paused (buffer full).
  bool paused = false;

private:
  struct waiting {
    envelope msg;
    clock::time_point due; // time_point::min() for a fetched record
  };

  std::uint64_t generation_;
  ordering_mode mode_;
  std::deque<waiting> buffer_; // in offset order
  std::set<std::int64_t> unsettled_;
  std::int64_t next_ = -1; // one past the highest fetched offset
  std::size_t not_due_ = 0; // records in buffer_ waiting for a time
};

} // namespace mailroom::kafka
