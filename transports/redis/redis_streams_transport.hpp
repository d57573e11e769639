#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "clients/redis/redis_connection.hpp"
#include "core/envelope.hpp"
#include "core/io_result.hpp"
#include "core/transport.hpp"
#include "transports/redis/redis_streams_settings.hpp"
#include "transports/redis/stream_entry_decoder.hpp"

namespace mailroom {

/// A point-in-time copy of a redis_streams_transport's counters.
struct redis_streams_stats {
  std::uint64_t read = 0;        ///< New entries read from the stream (`>`).
  std::uint64_t taken_over = 0;  ///< Idle entries taken over by XAUTOCLAIM and delivered.
  std::uint64_t redelivered = 0; ///< Due retries claimed and delivered.
  std::uint64_t acked = 0;       ///< Entries XACK removed from the pending list.
  std::uint64_t nacked = 0;      ///< Retries scheduled.
  std::uint64_t dead_lettered = 0; ///< Entries written to the dead-letter stream.
  /// Taken-over entries handed over as poison for exceeding `max_deliveries`.
  std::uint64_t over_delivered = 0;
  /// Entries handed over as poison because they are malformed (no payload
  /// field).
  std::uint64_t malformed = 0;
  /// Nacks and dead-letters ignored because the entry was settled or taken
  /// over by another consumer meanwhile.
  std::uint64_t stale_settles = 0;
  std::uint64_t extended = 0; ///< Idle times reset by extend().
};

/// A transport on a Redis stream read through a consumer group.
///
/// Mapping onto the transport calls:
///
/// - The group is created with `XGROUP CREATE ... MKSTREAM` before the first
///   poll (an existing group is used as is) and again whenever Redis answers
///   `NOGROUP`.
/// - `poll` takes at most `max` entries in at most two round trips: a script
///   first takes over entries idle longer than `min_idle` (XAUTOCLAIM, a
///   pass every `recovery_interval`), then claims due retries (XCLAIM); then
///   XREADGROUP `>` reads new entries for the room left, blocking for
///   `min(wait, block)` only when the script found nothing. The script runs
///   only when a recovery pass is due, a retry this transport scheduled is
///   due, `retry_check_interval` has passed since it last found the retry
///   set drained, or its last run filled the batch: a busy poll is one
///   XREADGROUP. Envelopes: id and receipt
///   handle are the entry id, `attempt` is the entry's delivery count (1 for a new entry;
///   read with XPENDING after a claim); see stream_entry_decoder for the
///   fields. The engine keeps the attempt errors (its attempt log).
/// - Taken-over entries whose delivery count exceeds `max_deliveries` are
///   handed over as poison, reason "delivery count N exceeds M", and so are
///   malformed entries (no payload field), reason `entry has no "<field>"
///   field`: the engine dead-letters them.
/// - `ack` is one pipelined round trip: XACK of every id, plus ZREM of the
///   retry records of redelivered entries.
/// - `nack` keeps the entry in the pending list and schedules it in the
///   retry set (scored by due time, Unix ms); any consumer's poll claims it
///   once due, which bumps the delivery count, so `attempt` counts it.
/// - `dead_letter` XADDs to the dead-letter stream the fields
///   `<payload_field>` (the record's payload; none when the payload field
///   is ""), `reason`, `attempts`, `errors` (a JSON array of strings),
///   `origin` (`<stream>/<entry id>`), `entry_id`, `key`,
///   `dead_lettered_at_ms` and `header:<name>` for each other field of the
///   entry, and only after that write succeeded XACKs the original, all in
///   one script: a failed write leaves the original pending. The script
///   also keeps `<dlq stream>:written:<entry id>` (consumer and delivery
///   count, for an hour), so the same write repeated after its reply was
///   lost is answered as written, not as stale.
/// - nack and dead-letter of an entry that another consumer took over, that
///   a later delivery to this same consumer holds (its delivery count moved
///   on: recovery gave it back after its idle time), or that is no longer
///   pending, do nothing and succeed: the newer delivery settles it
///   (`stale_settles` counts them). An ack of an older delivery does ack the
///   entry: its handler did succeed.
///
/// Failures are values: an unreachable server is `transient` (the poller
/// backs off), server errors are `fatal` except the self-healing ones listed
/// at streams_failure(). The transport is endless: exhausted() stays false.
///
/// Thread-safe. Polls use a connection of their own, so a blocking read
/// never delays the settle calls (ack, nack, dead-letter), which share a
/// second connection. Polls are serialised.
class redis_streams_transport final : public transport {
public:
  /// Creates a transport with `settings` (defaults derived by
  /// resolve_defaults(), which may throw std::invalid_argument). Nothing is
  /// sent before the first call.
  explicit redis_streams_transport(redis_streams_settings settings);

  /// Releases the connections (without close()'s consumer clean-up).
  ~redis_streams_transport() override;

  redis_streams_transport(const redis_streams_transport&) = delete;
  redis_streams_transport& operator=(const redis_streams_transport&) = delete;

  /// Returns "redis-streams".
  const char* name() const override { return "redis-streams"; }

  /// Returns "redis-streams:<stream>:<group>".
  std::string source_id() const override {
    return std::string{"redis-streams:"} + settings_.stream + ":" + settings_.group;
  }

  /// Creates the consumer group (and the stream) unless it exists. Polls do
  /// this by themselves; call it to fail early or to create the group before
  /// producers write.
  io_result ensure_group();

  /// Appends up to `max` entries to `out` as described above, blocking at
  /// most `min(wait, settings().block)` when none is ready. Returns at once,
  /// empty, after close().
  io_result poll(std::size_t max, std::chrono::milliseconds wait,
                 envelope_batch& out) override;

  /// Acknowledges every entry of `batch` in one round trip. Entries no longer
  /// pending are skipped by Redis; that is not an error.
  io_result ack(const std::vector<const envelope*>& batch) override;

  /// Schedules `msg` for redelivery `delay` from now (at once for zero or
  /// less).
  io_result nack(const envelope& msg, std::chrono::milliseconds delay) override;

  /// Writes `msg` with `record` to the dead-letter stream, then acknowledges
  /// it, atomically. Returns a failure (and leaves the entry pending) when
  /// the write failed.
  io_result dead_letter(const envelope& msg, const dead_letter_record& record) override;

  /// Returns `min_idle` as the lease (an entry idle that long is taken over
  /// by recovery), renewed every third of it.
  std::optional<lease_terms> lease() const override;

  /// Resets the idle time of every entry still pending to this consumer, in
  /// one script call; entries acked or taken over meanwhile are `lost`.
  io_result extend(const std::vector<const receipt*>& receipts, clock::time_point until,
                   std::vector<std::size_t>& lost) override;

  /// Returns XLEN of the dead-letter stream (on a connection of its own, so
  /// it answers after close() too), or nullopt when Redis cannot be asked.
  std::optional<std::uint64_t> dead_letter_depth() override;

  /// Deletes this consumer from the group if it holds nothing pending (see
  /// `delete_consumer_on_close`) and releases both connections; later polls
  /// return empty and settle calls fail. Acks are synchronous, so nothing is
  /// left to flush. Always succeeds.
  io_result close() override;

  /// Returns the poison it handed over, by kind: entries without the
  /// payload field and entries delivered too often.
  std::vector<std::pair<std::string, std::uint64_t>> stats_report() const override {
    auto s = stats();
    return {{"malformed entries", s.malformed},
            {"entries delivered too often", s.over_delivered}};
  }

  /// Returns the settings in use, defaults derived.
  const redis_streams_settings& settings() const { return settings_; }

  /// Returns a copy of the counters.
  redis_streams_stats stats() const;

private:
  /// Counters, updated without locks.
  struct counters {
    std::atomic<std::uint64_t> read{0};
    std::atomic<std::uint64_t> taken_over{0};
    std::atomic<std::uint64_t> redelivered{0};
    std::atomic<std::uint64_t> acked{0};
    std::atomic<std::uint64_t> nacked{0};
    std::atomic<std::uint64_t> dead_lettered{0};
    std::atomic<std::uint64_t> over_delivered{0};
    std::atomic<std::uint64_t> malformed{0};
    std::atomic<std::uint64_t> stale_settles{0};
    std::atomic<std::uint64_t> extended{0};
  };

  /// Runs XGROUP CREATE on the polling connection; needs `poll_mutex_`.
  io_result create_group();
  /// Runs the poll script (take-overs, due retries) for up to `room`
  /// entries; needs `poll_mutex_`.
  io_result claim(std::size_t room, bool recover, envelope_batch& out);
  /// Reads up to `room` new entries, blocking up to `block` (not at all for
  /// 0); needs `poll_mutex_`.
  io_result read_new(std::size_t room, std::chrono::milliseconds block,
                     envelope_batch& out);
  /// Runs the dead-letter script for `msg` and `record`.
  io_result write_dead_letter(const envelope& msg, const dead_letter_record& record);

  const redis_streams_settings settings_;
  const stream_entry_decoder decoder_;
  std::unique_ptr<redis_connection> reader_;  // poll script and blocking reads
  std::unique_ptr<redis_connection> settler_; // ack, nack, dead-letter, close
  redis_script_id poll_script_ = 0;
  redis_script_id nack_script_ = 0;
  redis_script_id dead_letter_script_ = 0;
  redis_script_id release_script_ = 0;
  redis_script_id extend_script_ = 0;

  // Shared by every call, exclusive in close(): the connections outlive calls.
  mutable std::shared_mutex lifecycle_;
  bool closed_ = false;

  std::mutex poll_mutex_; // guards the fields below
  bool group_ready_ = false;
  std::string cursor_ = "0-0";
  clock::time_point next_recovery_{};
  // When the poll script should look for due retries next, as
  // clock::time_point ticks; nack() pulls it earlier without `poll_mutex_`.
  std::atomic<clock::rep> next_retry_check_{0};

  counters counters_;
};

} // namespace mailroom
