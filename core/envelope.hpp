#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mailroom {

/// Clock used for every deadline, delay and latency inside the engine.
using clock = std::chrono::steady_clock;

/// Opaque handle a transport uses to settle one delivery of a message.
///
/// A transport fills in whichever part it needs: the in-memory transport uses
/// `seq` and `generation`, Kafka would use `partition` and `offset`, SQS a
/// receipt handle in `handle`, Redis Streams an entry id in `handle`.
struct receipt {
  std::uint64_t seq = 0;        ///< Transport-local sequence number.
  std::uint64_t generation = 0; ///< Delivery generation; a stale one is ignored.
  std::int32_t partition = -1;  ///< Partition, for partitioned transports.
  std::int64_t offset = -1;     ///< Offset within the partition.
  /// Which assignment of its partition delivered it, numbered upwards by a
  /// partitioned transport that numbers them (Kafka); 0 when it does not.
  /// A revocation names the assignment it ends (`topic_partition`).
  std::uint64_t assignment = 0;
  std::string handle;           ///< Text handle (SQS receipt, stream entry id).
};

/// One message as the engine sees it, from poll to settle.
///
/// The envelope is the only representation of a message inside the engine:
/// poller, dedupe, worker and dead-letter actor all pass it along by value
/// (moved, never converted).
struct envelope {
  std::string id;           ///< Transport message id, unique per message.
  std::string key;          ///< Idempotency key (header, or derived per transport).
  std::string topic;        ///< Topic, queue or stream the message came from.
  std::string ordering_key; ///< Key for `per_key` ordering; empty means `key`.
  std::string payload;      ///< Payload bytes, opaque to the engine.
  std::vector<std::pair<std::string, std::string>> headers; ///< Transport headers.
  std::uint32_t attempt = 1;    ///< Delivery count, 1 on the first delivery.
  clock::time_point received{}; ///< When the poller received this delivery.
  receipt handle;               ///< Transport receipt for ack / nack / dead-letter.
  /// Errors of the earlier attempts, oldest first. The engine fills it in
  /// from its attempt log (`attempt_log`) when the message is delivered
  /// again, so a dead-lettered message records its whole history; a
  /// transport leaves it empty.
  std::vector<std::string> attempt_errors;
  /// When its first attempt failed, Unix ms; 0 before any failed (kept with
  /// `attempt_errors`).
  std::int64_t first_failure_ms = 0;
  /// Why the transport hands this delivery over only to be dead-lettered
  /// (`failure_class::poison`): it could not be decoded, or it is over the
  /// transport's delivery limit. The engine writes it to the dead-letter
  /// destination with this reason, without dedupe or a handler, and counts
  /// it as rejected. Empty for every other delivery.
  std::string poison;

  /// Returns the key that `per_key` ordering serialises on.
  const std::string& order_key() const {
    return ordering_key.empty() ? key : ordering_key;
  }
};

/// A batch of envelopes, the unit that flows between actors.
using envelope_batch = std::vector<envelope>;

} // namespace mailroom
