#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "clients/aws/aws_credentials.hpp"
#include "clients/aws/sqs_api.hpp"
#include "core/transport.hpp"
#include "transports/sqs/sqs_transport_settings.hpp"

namespace mailroom {

/// A point-in-time copy of an sqs_transport's counters.
struct sqs_transport_stats {
  std::uint64_t receive_calls = 0;  ///< ReceiveMessage calls answered.
  std::uint64_t received = 0;       ///< Messages received.
  std::uint64_t receive_errors = 0; ///< ReceiveMessage calls that failed (retried).
  std::uint64_t deleted = 0;        ///< Messages deleted by acks and dead-letters.
  std::uint64_t delete_retries = 0; ///< Delete entries that failed once and were sent again.
  std::uint64_t nacked = 0;         ///< Visibility changes of nacks.
  std::uint64_t extended = 0;       ///< Visibility extensions (heartbeats).
  std::uint64_t lost = 0;           ///< Extensions refused: the receipt was no longer ours.
  std::uint64_t dead_lettered = 0;  ///< Messages sent to the dead-letter queue.
  std::uint64_t stale_settles = 0;  ///< Settles of receipts no longer ours.
  std::uint64_t over_received = 0;  ///< Handed over as poison: over `max_receives`.
  /// Buffered messages handed back unpolled (visibility 0): held too long
  /// in the buffer, or still there at close.
  std::uint64_t handed_back = 0;
};

/// A transport on one SQS queue (or an SQS-compatible server) over the SQS
/// JSON protocol (clients/aws).
///
/// Mapping onto the transport calls:
///
/// - `receivers` threads the transport owns (never CAF's scheduler) each run
///   long polls (ReceiveMessage, `wait_time_s`, all system and message
///   attributes, VisibilityTimeout `visibility_timeout_s`) on a connection of
///   their own, but only for what the engine asked for and has not got yet,
///   into a buffer that `poll` drains. A message that waited in the buffer
///   for more than a quarter of its visibility timeout is handed back
///   (visibility 0) instead of delivered, so the engine's idea of a lease is
///   never later than the server's.
/// - Envelopes: id MessageId; key the `key_attribute` attribute, else the
///   MessageId; topic the queue name; ordering key the MessageGroupId (FIFO);
///   headers the message attributes (String and Number values; Binary as
///   base64); attempt ApproximateReceiveCount (`counts_deliveries`); a
///   message received more than `max_receives` times is handed over as
///   poison. The attempt errors live in the engine's attempt log between
///   deliveries: SQS cannot change a message's attributes.
/// - `ack`: DeleteMessageBatch, 10 entries a call, up to 4 calls at once
///   (each on a connection of its own); a failed entry is sent
///   again (with backoff, a bounded number of times) and never reported as
///   acked; an entry refused as ReceiptHandleIsInvalid is stale.
/// - `nack(delay)`: ChangeMessageVisibility to the delay rounded up to whole
///   seconds, capped at 12 h.
/// - `lease`/`extend`: the visibility heartbeat, ChangeMessageVisibilityBatch
///   to `visibility_timeout_s`, every `heartbeat_interval_s`; a refused
///   entry is lost (its settle will be stale).
/// - `dead_letter`: SendMessage of the record's payload to `dlq_queue_url`
///   with the attributes `mailroom.reason`, `mailroom.attempts`,
///   `mailroom.errors` (a JSON list), `mailroom.source.queue`,
///   `mailroom.source.message_id`, `mailroom.first_failure_ms` (and
///   `mailroom.key`, `mailroom.dead_lettered_at_ms`), then the delete of the
///   original. The receipt is checked first (a visibility change), so a
///   stale delivery writes nothing. Without `dlq_queue_url` the message is
///   made visible again for the queue's redrive policy to move.
/// - FIFO queues: the group is the ordering key and a retry keeps its place
///   (`retries_keep_order`): the server delivers nothing more of a group
///   while one of its messages is in flight.
///
/// Transient failures (throttling, 5xx, connection errors) of the receive
/// loop are retried with full-jitter backoff and logged once per outage.
/// Thread-safe.
class sqs_transport final : public transport {
public:
  /// Loads the credentials, resolves the queue URL, reads the queue's
  /// attributes (FIFO, redrive policy) and the dead-letter queue's, and
  /// starts the receivers. Throws std::runtime_error with the reason when
  /// credentials are missing, a queue does not exist or refuses access, the
  /// server does not answer within `startup_timeout_ms`, or dead-letters
  /// would have nowhere to go.
  explicit sqs_transport(sqs_transport_settings settings);

  /// As above with the given credentials.
  sqs_transport(sqs_transport_settings settings, aws_credentials credentials);

  /// Closes the transport if close() was not called.
  ~sqs_transport() override;

  sqs_transport(const sqs_transport&) = delete;
  sqs_transport& operator=(const sqs_transport&) = delete;

  const char* name() const override { return "sqs"; }

  /// Returns "sqs:<queue url>".
  std::string source_id() const override { return "sqs:" + queue_url_; }

  io_result poll(std::size_t max, std::chrono::milliseconds wait,
                 envelope_batch& out) override;
  io_result ack(const std::vector<const envelope*>& batch) override;
  io_result ack_checked(const std::vector<const envelope*>& batch,
                        std::vector<std::size_t>& stale) override;
  io_result nack(const envelope& msg, std::chrono::milliseconds delay) override;
  io_result dead_letter(const envelope& msg, const dead_letter_record& record) override;

  /// True on a FIFO queue: a retried message keeps its group's place.
  bool retries_keep_order() const override { return fifo_; }

  /// Returns the visibility timeout renewed every `heartbeat_interval_s`, or
  /// nullopt when heartbeats are off.
  std::optional<lease_terms> lease() const override;

  /// Extends the visibility of `receipts` to `visibility_timeout_s` (or to
  /// `until`, if later), 10 a call.
  io_result extend(const std::vector<const receipt*>& receipts, clock::time_point until,
                   std::vector<std::size_t>& lost) override;

  /// Returns the messages the dead-letter queue holds (visible, in flight and
  /// delayed), or nullopt when it cannot be asked.
  std::optional<std::uint64_t> dead_letter_depth() override;

  /// Asks for the queue's attributes on a client of its own whose requests
  /// are bounded by `timeout`; names the queue and the reason when that
  /// fails (the receivers' failures only show in their backoff).
  std::string unreachable(std::chrono::milliseconds timeout) override;

  /// Returns the poison handed over and the buffered messages handed back.
  std::vector<std::pair<std::string, std::uint64_t>> stats_report() const override;

  /// Stops the receivers (a long poll in progress is cut short), hands back
  /// what is buffered with visibility 0 and returns; later polls return
  /// empty. Acks are synchronous: nothing is left to flush.
  io_result close() override;

  /// Returns a copy of the counters.
  sqs_transport_stats stats() const;

  /// Returns the URL of the queue consumed.
  const std::string& queue_url() const { return queue_url_; }

  /// Returns true when the queue is a FIFO queue.
  bool fifo() const { return fifo_; }

  /// Returns the settings in use.
  const sqs_transport_settings& settings() const { return settings_; }

private:
  /// Deletes the messages `chunk` (≤ 10 indices into `batch`) in one
  /// DeleteMessageBatch, sending failed entries again a bounded number of
  /// times; appends to `stale` the entries refused as no longer ours.
  io_result delete_chunk(const std::vector<const envelope*>& batch,
                         const std::vector<std::size_t>& chunk,
                         std::vector<std::size_t>& stale);
  /// Remembers `handles` as deleted (bounded), so a repeated ack of one
  /// sends nothing.
  void remember_deleted(std::vector<std::string>& handles);

  struct counters;
  class api_pool;
  struct buffered {
    envelope msg;
    clock::time_point received;
  };

  void start();
  void receive_loop(std::size_t index);
  envelope envelope_of(sqs_message&& m, clock::time_point now);
  io_result hand_back(const std::vector<std::string>& handles);
  io_result change_visibility(const receipt& r, int seconds);

  const sqs_transport_settings settings_;
  const std::string region_;
  aws_credentials credentials_;
  std::string queue_url_;
  std::string queue_name_;
  std::string depth_queue_url_; // the DLQ asked by dead_letter_depth()
  bool fifo_ = false;
  std::unique_ptr<api_pool> apis_;
  std::mutex probe_mutex_;            // one readiness probe at a time
  std::unique_ptr<sqs_api> probe_api_; // made by the first, bounded by its timeout
  std::unique_ptr<counters> counters_;

  mutable std::mutex mutex_; // guards the fields below
  std::condition_variable readable_; // a receive added to the buffer
  std::condition_variable wanted_;   // demand grew, or closing
  std::deque<buffered> buffer_;
  std::size_t demand_ = 0;   // messages the engine asked for and has not got
  std::size_t reserved_ = 0; // messages long polls in progress may bring
  std::string fatal_;        // a receive failed fatally: poll says so
  bool outage_ = false;      // receives fail: logged once, at its start and end
  clock::time_point outage_began_{};
  bool closing_ = false;
  std::uint64_t seq_ = 0;

  std::mutex deleted_mutex_;
  std::unordered_set<std::string> recently_deleted_; // receipts, so a repeated ack is idempotent
  std::deque<std::string> deleted_order_;

  std::atomic<bool> stop_{false};
  std::vector<std::thread> receivers_;
  std::mutex close_mutex_;
  bool closed_ = false; // guarded by close_mutex_
};

} // namespace mailroom
