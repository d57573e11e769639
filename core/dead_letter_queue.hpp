#pragma once

// What `mailroom dlq` needs of a transport's dead-letter destination: read
// its records in order, find one, replay one to where it came from, remove
// one. Each transport that parks messages somewhere an operator can reach
// (a Redis stream, a Kafka topic, an SQS queue) provides one adapter;
// filters, output and confirmation are the command's (app/dlq_app.cpp).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mailroom {

/// One dead-letter record as the command shows it.
struct dlq_record {
  std::string id;         ///< Its id in the DLQ (stream entry id, offset, ...).
  std::string origin;     ///< Where the message came from ("orders/1712-0").
  std::string reason;     ///< Why it was parked.
  std::uint32_t attempts = 0;
  std::int64_t dead_lettered_at_ms = 0; ///< Unix ms; 0 when not recorded.
  std::string key;        ///< Its idempotency key.
  std::string payload;    ///< As stored: masked fields stay masked.
  /// False when the message had no payload (a malformed stream entry):
  /// none is written back.
  bool has_payload = true;
  std::vector<std::string> errors; ///< Each attempt's error, oldest first.
  /// The message's own fields or headers, as they will be written back.
  std::vector<std::pair<std::string, std::string>> headers;
  std::uint32_t replays = 0; ///< How often it was replayed before.
  /// The broker's own key of the message (a Kafka record key), written back
  /// with it so it lands in the same partition; none where the broker has
  /// none or the message had none.
  std::optional<std::string> broker_key;
};

/// How a replay or a removal of one record ended.
enum class dlq_change {
  done,    ///< Written back (replay) or removed, as asked.
  missing, ///< The record was no longer there (replayed or purged meanwhile).
};

/// A transport's dead-letter destination. Calls block; failures throw
/// std::runtime_error with the store's reason.
class dead_letter_queue {
public:
  virtual ~dead_letter_queue() = default;

  /// Returns a line naming the destination ("stream \"orders:dlq\" at ...").
  virtual std::string describe() const = 0;

  /// Calls `visit` with each record there when the call began, oldest
  /// first, until it returns false; `visit` may replay or remove the record
  /// it was given.
  virtual void for_each(const std::function<bool(const dlq_record&)>& visit) = 0;

  /// Returns the record `id` in `out`; false when there is none.
  virtual bool find(const std::string& id, dlq_record& out) = 0;

  /// Writes `r`'s payload and headers back to its source (a header
  /// `mailroom.replayed` counts the replays), clears its idempotency key so
  /// the replay is not deduped away, and removes it from the DLQ, as one
  /// step: after a crash it is either replayed or still in the DLQ.
  virtual dlq_change replay(const dlq_record& r) = 0;

  /// Removes `r` from the DLQ.
  virtual dlq_change remove(const dlq_record& r) = 0;

  /// Makes the replays and removals since the last call durable. An
  /// adapter that groups them into one write (a Kafka transaction) answers
  /// `done` before they are; the command calls this every
  /// `changes_per_commit` changes and at the end. When it throws, none of
  /// the changes since the last call happened. Adapters that write each
  /// change at once keep the default.
  virtual void commit() {}

  /// How many changes the command makes between two calls of `commit`.
  virtual std::size_t changes_per_commit() const { return 1; }
};

} // namespace mailroom
