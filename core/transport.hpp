#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/envelope.hpp"
#include "core/io_result.hpp"
#include "core/revocation.hpp"

namespace mailroom {

/// What the dead-letter destination records beside the message.
struct dead_letter_record {
  std::string reason;                   ///< Why the message was parked.
  std::uint32_t attempts = 0;           ///< Deliveries made, the last one included.
  std::vector<std::string> errors;      ///< Each attempt's error, oldest first.
  std::string origin;                   ///< Where it came from (topic and receipt).
  std::int64_t dead_lettered_at_ms = 0; ///< Wall-clock time of parking, Unix ms.
  std::int64_t first_failure_ms = 0;    ///< When the first attempt failed, Unix ms; 0: none.
  std::string payload;                  ///< Payload with configured fields masked.
};

/// How long a delivery stays this consumer's before the broker hands it to
/// another one, for brokers with leases (SQS visibility, the memory
/// transport's visibility timeout, a Redis Streams entry's idle time).
struct lease_terms {
  std::chrono::milliseconds duration; ///< Lease granted by a poll or an extend.
  /// How often the engine renews the leases of what it still holds; a lease
  /// is renewed when less than `duration - renew_every` of it is left.
  std::chrono::milliseconds renew_every;
};

/// One sample of a transport's own gauge, as a metrics scrape shows it:
/// `mailroom_<name>{labels} value`.
struct transport_gauge {
  std::string name; ///< Metric name without the prefix ("kafka_consumer_lag").
  std::string help; ///< One line that says what it measures.
  std::vector<std::pair<std::string, std::string>> labels; ///< (label, value).
  double value = 0;
};

/// The broker seam: every transport adapter implements these calls.
///
/// Calls may block (they do network I/O in the real adapters), so the engine
/// only makes them from threads it owns or from detached actors, never from
/// CAF's cooperative scheduler. Errors are returned as values.
class transport {
public:
  virtual ~transport() = default;

  /// Returns the adapter's name for logs ("memory", "kafka", ...).
  virtual const char* name() const = 0;

  /// Returns what identifies the source this transport consumes: adapter,
  /// stream / topics / queue and consumer group ("redis-streams:orders:g").
  /// Recovery records are scoped by it. Defaults to name().
  virtual std::string source_id() const { return name(); }

  /// Appends up to `max` deliveries to `out`, waiting at most `wait` when
  /// none is ready. A delivery the transport cannot decode, or one over its
  /// delivery limit, is appended too, with `envelope::poison` saying why:
  /// the engine dead-letters it. Returns a failure only when the broker
  /// could not be asked.
  virtual io_result poll(std::size_t max, std::chrono::milliseconds wait,
                         envelope_batch& out) = 0;

  /// Acknowledges the messages, which are then never delivered again.
  virtual io_result ack(const std::vector<const envelope*>& batch) = 0;

  /// Acknowledges as ack() does, and appends to `stale` the index (in
  /// `batch`) of every message whose delivery is no longer this consumer's
  /// (its partition was revoked): those are not acked, and the engine counts
  /// them as fenced. The default acks all and reports none.
  virtual io_result ack_checked(const std::vector<const envelope*>& batch,
                                std::vector<std::size_t>& stale) {
    (void)stale;
    return ack(batch);
  }

  /// Hands the message back to be delivered again after `delay`. Its error
  /// history is the engine's to keep (`attempt_log`), not the transport's.
  virtual io_result nack(const envelope& msg, std::chrono::milliseconds delay) = 0;

  /// Writes the message and `record` to the dead-letter destination, then
  /// acknowledges the original. The original is not acknowledged if the
  /// write failed.
  virtual io_result dead_letter(const envelope& msg,
                                const dead_letter_record& record) = 0;

  /// Returns true when `envelope::attempt` counts the deliveries of a
  /// message (the broker keeps the count: SQS, Redis Streams, memory), so the
  /// engine asks its attempt log only about redeliveries. False (Kafka): the
  /// engine counts every start of a message's handler in the log and takes
  /// the count (and the history) from there as a lane takes the message.
  virtual bool counts_deliveries() const { return true; }

  /// Returns true when a nacked message is redelivered to this consumer in
  /// its place in the order (Kafka: it waits in the partition, at its
  /// offset), so in the ordered modes the engine hands back, unstarted, the
  /// later messages of its key it holds, to be redelivered after the retry.
  /// False where a retry goes back to the broker and order is not kept.
  virtual bool retries_keep_order() const { return false; }

  /// Returns the deliveries after which the engine dead-letters a message
  /// unhandled (rejected), for a transport that does not count deliveries
  /// itself (the engine counts them in its attempt log); 0 for none.
  /// Transports that count deliveries apply their limit in poll().
  virtual std::uint32_t delivery_limit() const { return 0; }

  /// Hands the transport the engine's side of revocations (nullptr when the
  /// engine stops): a transport whose deliveries can stop being this
  /// consumer's all at once (a Kafka rebalance) calls it from inside poll()
  /// before it gives them up. The default ignores it.
  virtual void set_revocation_listener(revocation_listener* listener) { (void)listener; }

  /// Returns the lease terms of a delivery, or nullopt when the broker has no
  /// leases (a delivery is this consumer's until it settles it: Kafka).
  virtual std::optional<lease_terms> lease() const { return std::nullopt; }

  /// Extends the leases of the deliveries `receipts` until `until`, so work
  /// that the engine still holds (queued, running, waiting for its
  /// dead-letter write) is not delivered to another consumer meanwhile.
  /// Appends to `lost` the index of every receipt whose delivery is no
  /// longer this consumer's (settled, or taken over): its later settle is
  /// stale. The default does nothing (brokers without leases).
  virtual io_result extend(const std::vector<const receipt*>& receipts,
                           clock::time_point until, std::vector<std::size_t>& lost) {
    (void)receipts;
    (void)until;
    (void)lost;
    return io_result::success();
  }

  /// Returns how many records the dead-letter destination holds now (it may
  /// ask the broker, also after close()), or nullopt when it cannot tell.
  virtual std::optional<std::uint64_t> dead_letter_depth() { return std::nullopt; }

  /// Returns counts the transport keeps of itself for the run summary, as
  /// (row name, value): what it rejected without handing it to the engine,
  /// what it took over, and the like. Default none.
  virtual std::vector<std::pair<std::string, std::uint64_t>> stats_report() const {
    return {};
  }

  /// Returns the transport's own gauges for the metrics endpoint: per
  /// partition positions and lag on Kafka, and the like. Called by a scrape
  /// on its own thread: it must not block on the broker. Default none.
  virtual std::vector<transport_gauge> gauges() const { return {}; }

  /// Asks the broker behind the transport whether it answers, waiting at
  /// most `timeout`; returns why not, "" when it does. For /readyz: a
  /// consumer whose broker is gone gets no work, yet its polls may not fail
  /// (librdkafka reconnects behind an empty poll). Called at most once a
  /// second on the readiness probe's thread, never the hot path; it may
  /// block, also after close(). Default "" (the poll failures tell).
  virtual std::string unreachable(std::chrono::milliseconds timeout) {
    (void)timeout;
    return {};
  }

  /// Returns true when a finite source has delivered and settled everything.
  /// Endless transports (brokers) always return false.
  virtual bool exhausted() const { return false; }

  /// Flushes pending acknowledgements and releases the connection.
  virtual io_result close() = 0;
};

} // namespace mailroom
