#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "clients/aws/sqs_error.hpp"
#include "core/io_result.hpp"

namespace mailroom {

/// What an `sqs_api` call answers: a status, the server's error if it sent
/// one, and the parsed reply on success.
template <class T>
struct sqs_reply {
  /// `none` on success; otherwise the class of the failure (see
  /// `classify_sqs_error`) and a text naming the action, the error code and
  /// the server's message, never a credential.
  io_result status;
  sqs_error error; ///< Set when the server answered an error.
  T value{};       ///< The reply; meaningful on success only.

  /// Returns true when the call succeeded.
  explicit operator bool() const { return static_cast<bool>(status); }
};

/// The reply of a call that answers nothing.
struct sqs_empty {};

/// A message attribute as SQS types it.
struct sqs_attribute_value {
  /// "String", "Number" or "Binary", optionally with a custom suffix
  /// ("String.json"). Sending supports String and Number.
  std::string data_type = "String";
  std::string string_value; ///< The value of a String or Number.
  std::string binary_value; ///< The value of a Binary, base64 as on the wire.
};

/// Message attributes by name.
using sqs_message_attributes = std::map<std::string, sqs_attribute_value>;

/// One received message.
struct sqs_message {
  std::string message_id;     ///< Assigned by SQS at send.
  std::string receipt_handle; ///< Names this receive; only the latest one is valid.
  std::string body;           ///< The body, byte-exact (checked against its MD5).
  std::string md5_of_body;    ///< Hex MD5 of `body`, as SQS computed it.
  /// Every system attribute returned, by name ("ApproximateReceiveCount", ...).
  std::map<std::string, std::string> attributes;
  sqs_message_attributes message_attributes; ///< The sender's attributes.
  int approximate_receive_count = 0;         ///< 1 on the first receive.
  std::int64_t sent_timestamp_ms = 0;        ///< Unix time of the send, ms; 0: absent.
  std::int64_t first_receive_timestamp_ms = 0; ///< Unix time of the first receive, ms.
  std::string message_group_id;         ///< FIFO queues only.
  std::string message_deduplication_id; ///< FIFO queues only.
  std::string sequence_number;          ///< FIFO queues only.
};

/// The parameters of ReceiveMessage.
struct sqs_receive_request {
  std::string queue_url;  ///< The queue.
  int max_messages = 10;  ///< MaxNumberOfMessages, 1..10.
  int wait_time_s = 20;   ///< WaitTimeSeconds, 0..20: long polling when > 0.
  /// VisibilityTimeout of the received messages, s (0..43200); unset: the
  /// queue's default.
  std::optional<int> visibility_timeout_s;
  /// System attributes asked for (MessageSystemAttributeNames, and the
  /// deprecated AttributeNames for older servers); "All" asks for each.
  std::vector<std::string> system_attribute_names = {"All"};
  /// Message attributes asked for (MessageAttributeNames); "All" asks for each.
  std::vector<std::string> message_attribute_names = {"All"};
  /// ReceiveRequestAttemptId of a FIFO queue (a retried receive gets the
  /// same messages); empty: none.
  std::string receive_request_attempt_id;
};

/// The parameters of SendMessage.
struct sqs_send_request {
  std::string queue_url;             ///< The queue.
  std::string body;                  ///< MessageBody: valid UTF-8, ≤ 256 KiB.
  sqs_message_attributes attributes; ///< MessageAttributes (String or Number).
  std::string group_id;              ///< MessageGroupId (FIFO, required there).
  /// MessageDeduplicationId (FIFO); empty: none (content-based dedup).
  std::string deduplication_id;
  std::optional<int> delay_s; ///< DelaySeconds 0..900; unset: the queue's.
};

/// What SendMessage answers.
struct sqs_sent_message {
  std::string message_id;      ///< The new message's id.
  std::string md5_of_body;     ///< Hex MD5 of the body SQS stored (checked).
  std::string sequence_number; ///< FIFO queues only.
};

/// One entry of DeleteMessageBatch.
struct sqs_delete_entry {
  std::string id;             ///< Names the entry in the answer; empty: its index.
  std::string receipt_handle; ///< The message's latest receipt handle.
};

/// One entry of ChangeMessageVisibilityBatch.
struct sqs_visibility_entry {
  std::string id;             ///< Names the entry in the answer; empty: its index.
  std::string receipt_handle; ///< The message's latest receipt handle.
  int visibility_timeout_s = 0; ///< New timeout from now, s (0: visible at once).
};

/// How one entry of a batch call ended.
struct sqs_batch_entry_result {
  std::string id;        ///< The entry's id.
  bool ok = false;       ///< Listed as Successful.
  std::string code;      ///< Failed only: "ReceiptHandleIsInvalid", ...
  std::string message;   ///< Failed only: the server's text.
  bool sender_fault = false; ///< Failed only: the entry was at fault.
};

/// What a batch call answers: one result per entry sent, in the order sent.
/// An entry the server listed nowhere fails with code "NotAnswered".
struct sqs_batch_results {
  std::vector<sqs_batch_entry_result> entries; ///< One per entry sent.

  /// Returns how many entries failed.
  std::size_t failed() const;
};

/// The RedrivePolicy of a queue.
struct sqs_redrive_policy {
  std::string dead_letter_target_arn; ///< The dead-letter queue's ARN.
  int max_receive_count = 0;          ///< Receives before a message moves there.
};

/// What GetQueueAttributes answers, the common attributes typed.
struct sqs_queue_attributes {
  std::map<std::string, std::string> all; ///< Every attribute returned, as text.
  std::int64_t approximate_number_of_messages = 0; ///< Visible messages.
  std::int64_t approximate_number_of_messages_not_visible = 0; ///< In flight.
  std::int64_t approximate_number_of_messages_delayed = 0;     ///< Delayed.
  int visibility_timeout_s = 0; ///< The default visibility timeout.
  bool fifo = false;            ///< FifoQueue.
  std::string queue_arn;        ///< QueueArn.
  std::optional<sqs_redrive_policy> redrive_policy; ///< Set when the queue has one.
};

} // namespace mailroom
