#pragma once

// An SQS dead-letter queue as `mailroom dlq` sees it.
//
// SQS has no way to read a queue without receiving from it: a listing
// receives the records and holds them invisible (for the transport's
// `visibility_timeout_s`, extended while the command runs) so that each is
// seen once, then makes what it did not change visible again at once. A
// command killed meanwhile leaves them invisible until that timeout ends.
// A FIFO DLQ hands out one record per message group at a time: a listing
// shows the oldest of each group, a replay of them all goes through every
// record.
//
// A replay sends the record's body and its message's attributes back to the
// queue it came from, then deletes the record. SQS cannot do both as one
// step: killed between the two, the record is back in the DLQ when the
// hold ends and the next replay sends it again. The copies share their
// idempotency key (`sqs_dlq_format::replay_key`) and, on a FIFO queue, their
// deduplication id, so with dedupe on the message is handled once; the
// record is never lost. The records in the DLQ are the ones the transport
// wrote (`transport.sqs.dlq_queue_url`) or, without one, the ones the
// queue's redrive policy moved there (which carry no reason).

#include <functional>
#include <memory>
#include <string>

#include "core/dead_letter_queue.hpp"
#include "transports/sqs/sqs_transport_settings.hpp"

namespace mailroom {

class sqs_dlq final : public dead_letter_queue {
public:
  /// Clears the dedupe state of idempotency key `key` of a message of
  /// `topic` (the queue's name), so that its replay is not deduped away;
  /// throws when it cannot.
  using key_eraser = std::function<void(const std::string& topic, const std::string& key)>;

  /// Resolves the source queue and its dead-letter queue and checks that
  /// both answer. `forget` may be empty (no shared dedupe store). Throws
  /// std::runtime_error naming what failed.
  sqs_dlq(sqs_transport_settings settings, key_eraser forget);
  /// Makes what the command still holds visible again.
  ~sqs_dlq() override;

  std::string describe() const override;
  void for_each(const std::function<bool(const dlq_record&)>& visit) override;
  bool find(const std::string& id, dlq_record& out) override;
  dlq_change replay(const dlq_record& r) override;
  dlq_change remove(const dlq_record& r) override;

private:
  struct state; // the client, the queues and what is held
  std::unique_ptr<state> s_;
};

} // namespace mailroom
