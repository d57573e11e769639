#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/io_result.hpp"

namespace mailroom {

/// What the engine remembers of a message's failed attempts.
struct attempt_history {
  /// Deliveries made when the latest error was recorded (that one included).
  /// For a broker that does not count deliveries (Kafka) the next delivery
  /// is `deliveries + 1`.
  std::uint32_t deliveries = 0;
  std::vector<std::string> errors; ///< Each failed attempt's error, oldest first.
  std::int64_t first_failure_ms = 0; ///< Wall-clock time of the first error, Unix ms.
};

/// How long a history is kept after its latest record unless configured
/// otherwise: far longer than any retry schedule, short enough that the
/// histories of messages settled elsewhere do not pile up.
constexpr std::chrono::milliseconds attempt_history_ttl = std::chrono::hours{24 * 7};

/// One history to record, for the message `id`.
struct attempt_entry {
  std::string_view id;            ///< The message's transport id.
  const attempt_history* history; ///< Its whole history, the latest error included.
};

/// Attempt seam: the history of a message's failed attempts, kept across its
/// redeliveries by the engine, not by the transport.
///
/// The retry budget and the dead-letter record's `errors` come from here, so
/// a transport whose records are immutable (Kafka) or whose attributes
/// cannot change on a redelivery (SQS) needs nothing of its own. The engine
/// records a message's history before it nacks it, loads it when the
/// message is delivered again, and forgets it once the message is settled.
///
/// A log holds the histories of one source (`transport::source_id`):
/// message ids are unique within it. Histories expire after a time to live,
/// so a message settled elsewhere (or deleted from the broker) is not
/// remembered for ever.
class attempt_log {
public:
  virtual ~attempt_log() = default;

  /// Loads the histories of `ids` in one call: `out[i]` is the history of
  /// `ids[i]`, nullopt when none is kept. Fails (transient) when the log
  /// cannot be asked; `out` is then left empty.
  virtual io_result load(const std::vector<std::string_view>& ids,
                         std::vector<std::optional<attempt_history>>& out) = 0;

  /// Counts one more delivery of each of `ids` and loads their histories in
  /// one call: `out[i].deliveries` includes this delivery. For brokers that
  /// do not count deliveries (Kafka): a message that crashes its consumer
  /// records no error, but its deliveries are counted all the same.
  virtual io_result deliver(const std::vector<std::string_view>& ids,
                            std::vector<attempt_history>& out) = 0;

  /// Stores each entry's history, replacing what was kept for its id.
  virtual io_result record(const std::vector<attempt_entry>& entries) = 0;

  /// Forgets the histories of `ids` (settled messages).
  virtual io_result forget(const std::vector<std::string_view>& ids) = 0;
};

} // namespace mailroom
