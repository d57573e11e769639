#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <vector>

#include "core/envelope.hpp"
#include "core/io_result.hpp"
#include "core/transport.hpp"

namespace mailroom {

/// Settings of a memory_transport. Every field has its default and unit beside it.
struct memory_transport_settings {
  /// How long a polled message stays invisible before it is delivered again
  /// unless it was settled, ms. Default 30000 (SQS's default).
  std::chrono::milliseconds visibility_timeout{30000};
  /// Most messages held at once (ready + delayed + in flight); publishers
  /// block beyond it. Default 65536; 0 counts as 1.
  std::size_t capacity = 65536;
  /// Most payload bytes held at once; publishers block beyond it (a single
  /// message larger than this still goes in when the transport is empty).
  /// Default 64 MiB; 0 counts as 1.
  std::size_t capacity_bytes = std::size_t{64} << 20;
  /// Deliveries after which a message is handed over as poison ("delivery
  /// count N exceeds M") for the engine to dead-letter, as an SQS redrive
  /// policy moves it; 0 means no limit. Default 0.
  std::uint32_t max_deliveries = 0;
};

/// One entry of the memory transport's dead-letter list.
struct memory_dead_letter {
  envelope message;          ///< The message as the caller handed it over.
  dead_letter_record record; ///< What the caller recorded beside it.
};

/// A point-in-time copy of the memory transport's counters and gauges.
struct memory_transport_stats {
  std::uint64_t published = 0;     ///< Messages accepted from producers.
  std::uint64_t delivered = 0;     ///< Deliveries made by poll, redeliveries included.
  std::uint64_t ready = 0;         ///< Messages visible now (gauge).
  std::uint64_t delayed = 0;       ///< Nacked messages waiting for their delay (gauge).
  std::uint64_t in_flight = 0;     ///< Polled and not settled (gauge).
  std::uint64_t acked = 0;         ///< Messages acknowledged.
  std::uint64_t nacked = 0;        ///< Nacks applied.
  std::uint64_t dead_lettered = 0; ///< Messages moved to the dead-letter list.
  std::uint64_t redelivered_by_timeout =
      0;                           ///< Deliveries whose visibility timeout ran out.
  std::uint64_t stale_settles = 0; ///< Ack / nack / dead-letter calls ignored as stale.
  std::uint64_t extended = 0;      ///< Visibility deadlines moved by extend().
};

/// An embedded, thread-safe queue with SQS-like semantics, for tests, the
/// benchmark and the `memory` transport of the command line.
///
/// A polled message stays invisible for the visibility timeout; if it is not
/// settled by then it becomes visible again and its next delivery has
/// `attempt + 1`. Every delivery carries a fresh receipt (`seq` = message
/// sequence, `generation` = delivery count, `offset` = internal slot), and a
/// settle call with a receipt of an earlier delivery is ignored and reported
/// as success, as SQS does with outdated receipt handles: the newer delivery
/// owns the message and will settle it.
///
/// Memory is bounded by `capacity` and `capacity_bytes`: producers block
/// while that many messages, or payload bytes, are ready, delayed or in
/// flight. Settle calls are O(1) per message and each
/// call takes the lock once, so batches amortise locking.
class memory_transport final : public transport {
public:
  /// Creates an empty transport with settings `s`.
  explicit memory_transport(memory_transport_settings s = {});

  /// Releases every message still held.
  ~memory_transport() override;

  memory_transport(const memory_transport&) = delete;
  memory_transport& operator=(const memory_transport&) = delete;

  /// Returns "memory".
  const char* name() const override { return "memory"; }

  /// Returns "memory:<instance>", unique to this transport: its messages live
  /// in this process only, so no other process may recover its records.
  std::string source_id() const override { return source_id_; }

  // ---- producer side -----------------------------------------------------

  /// Publishes one message, blocking while the transport is full. An empty
  /// `id` becomes the message's sequence number and an empty `key` the id.
  /// Returns a fatal failure when the input or the transport was closed.
  io_result publish(envelope msg);

  /// Publishes every message of `batch` in order, blocking while the
  /// transport is full and taking the lock once per run of messages that
  /// fit. Returns a fatal failure when the input or the transport was closed
  /// before all were published (a prefix may have been published).
  io_result publish_batch(std::vector<envelope> batch);

  /// Publishes messages `batch[first..]` in order, moving them out, while
  /// there is room, waiting at most `wait` in total for room. Returns how
  /// many were published; fewer than offered means the wait ran out or the
  /// input was closed (see accepts_input()). Lets a producer stop early.
  std::size_t publish_some(std::vector<envelope>& batch, std::size_t first,
                           std::chrono::milliseconds wait);

  /// Declares that no more messages will be published; exhausted() becomes
  /// true once every message is settled. Wakes blocked pollers.
  void close_input();

  /// Returns true while publishing is allowed (neither input nor transport
  /// closed).
  bool accepts_input() const;

  // ---- consumer side (transport) ------------------------------------------

  /// Appends up to `max` visible messages to `out`, waiting at most `wait`
  /// when none is visible. Promotes delayed messages whose delay passed and
  /// in-flight messages whose visibility timeout passed. A delivery past
  /// `max_deliveries` carries `poison`. Returns at once, empty, after
  /// close() or when exhausted. Always succeeds.
  io_result poll(std::size_t max, std::chrono::milliseconds wait,
                 envelope_batch& out) override;

  /// Removes each message whose receipt is current; stale receipts are
  /// ignored. Always succeeds.
  io_result ack(const std::vector<const envelope*>& batch) override;

  /// Makes the message visible again after `delay` (at once for a zero or
  /// negative delay). A stale receipt is ignored. Always succeeds.
  io_result nack(const envelope& msg, std::chrono::milliseconds delay) override;

  /// Appends a copy of `msg` and `record` to the dead-letter list and
  /// removes the original. A stale receipt is ignored without recording:
  /// the newer delivery owns the message and settles it, so recording the
  /// stale one would park a message that is also still being handled.
  /// Always succeeds.
  io_result dead_letter(const envelope& msg, const dead_letter_record& record) override;

  /// Returns the visibility timeout as the lease, renewed every third of it.
  std::optional<lease_terms> lease() const override;

  /// Moves the visibility deadline of every current receipt to `until`;
  /// stale receipts (settled, or redelivered since) are reported in `lost`.
  /// Always succeeds.
  io_result extend(const std::vector<const receipt*>& receipts, clock::time_point until,
                   std::vector<std::size_t>& lost) override;

  /// Returns true when the input is closed and nothing is ready, delayed or
  /// in flight.
  bool exhausted() const override;

  /// Wakes blocked pollers and publishers; later polls return empty at once
  /// and later publishes fail. Settling stays possible. Always succeeds.
  io_result close() override;

  // ---- inspection ----------------------------------------------------------

  /// Returns the length of the dead-letter list.
  std::optional<std::uint64_t> dead_letter_depth() override;

  /// Returns a copy of the dead-letter list, oldest first.
  std::vector<memory_dead_letter> dead_letters() const;

  /// Returns the current counters and gauges.
  memory_transport_stats stats() const;

  /// Returns the settings the transport was created with (capacity clamped).
  const memory_transport_settings& settings() const { return settings_; }

private:
  /// Index of a slot; `npos` ends a list.
  using slot_index = std::uint32_t;
  static constexpr slot_index npos = std::numeric_limits<slot_index>::max();

  /// Where a slot's message is in its life.
  enum class slot_state : std::uint8_t { free, ready, delayed, in_flight };

  /// One stored message with its intrusive list links.
  struct slot {
    envelope msg;                        ///< The transport's own copy.
    clock::time_point due{};             ///< Visibility deadline, or end of the delay.
    std::uint64_t seq = 0;               ///< Message sequence number.
    std::uint64_t generation = 0;        ///< Deliveries made so far.
    slot_index prev = npos;              ///< Previous slot in its list.
    slot_index next = npos;              ///< Next slot in its list (or free list).
    slot_state state = slot_state::free; ///< Which list holds the slot.
  };

  /// A FIFO of slots linked through `prev` / `next`.
  struct slot_list {
    slot_index head = npos; ///< Oldest slot.
    slot_index tail = npos; ///< Newest slot.
    std::size_t size = 0;   ///< Number of slots linked.
  };

  /// A delayed message in the min-heap on (due, seq).
  struct delayed_entry {
    clock::time_point due; ///< When it becomes visible.
    std::uint64_t seq;     ///< Tie-breaker and validity check.
    slot_index index;      ///< Its slot.
  };

  /// Moves `[first, last)` in while there is room, waiting for room until
  /// `deadline` (or forever); returns how many went in.
  std::size_t insert_range(envelope* first, envelope* last, bool forever,
                           clock::time_point deadline);
  /// Returns a free slot, growing the slot table when none is free.
  slot_index take_slot();
  /// Returns slot `i` to the free list and drops its message.
  void free_slot(slot_index i);
  /// Appends slot `i` to `l`.
  void push_back(slot_list& l, slot_index i);
  /// Removes and returns the oldest slot of the non-empty `l`.
  slot_index pop_front(slot_list& l);
  /// Removes slot `i` from `l`.
  void unlink(slot_list& l, slot_index i);
  /// Links slot `i` into the in-flight list at its place by deadline.
  void insert_in_flight(slot_index i);
  /// Returns the slot that receipt `r` currently owns, or `npos` if stale.
  slot_index find_in_flight(const receipt& r) const;
  /// Makes visible what timed out in flight or finished its delay by `now`.
  void promote(clock::time_point now);
  /// Returns the number of messages held (ready + delayed + in flight).
  std::size_t live() const { return ready_.size + delayed_.size() + in_flight_.size; }
  /// Returns true when `bytes` more payload would not fit (an empty
  /// transport takes any one message).
  bool full(std::size_t bytes) const {
    return live() >= settings_.capacity ||
           (live() > 0 && bytes_ + bytes > settings_.capacity_bytes);
  }
  /// Returns true when the input is closed and nothing is held.
  bool drained() const { return input_closed_ && live() == 0; }

  memory_transport_settings settings_;
  const std::string source_id_;
  mutable std::mutex mutex_;
  std::condition_variable readable_; // pollers wait here
  std::condition_variable writable_; // publishers wait here
  std::vector<slot> slots_;
  slot_list free_;
  slot_list ready_;
  slot_list in_flight_; // ordered by deadline (extend() re-links in order)
  std::vector<delayed_entry> delayed_;
  std::vector<memory_dead_letter> dead_letters_;
  std::uint64_t next_seq_ = 1;
  std::size_t bytes_ = 0; // payload bytes held
  std::size_t poll_waiters_ = 0;
  std::size_t publish_waiters_ = 0;
  bool input_closed_ = false;
  bool closed_ = false;
  memory_transport_stats counters_; // gauges are filled in by stats()
};

} // namespace mailroom
