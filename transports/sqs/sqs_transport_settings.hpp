#pragma once

#include <cstdint>
#include <string>

namespace mailroom {

/// Settings of an sqs_transport: the `[transport.sqs]` section. Every field
/// has its default and unit beside it. (Named apart from `sqs_settings`, the
/// settings of the SQS client in clients/aws, which this one fills in.)
struct sqs_transport_settings {
  /// URL of the queue to consume. Either this or `queue_name` is required.
  std::string queue_url;
  /// Name of the queue, resolved with GetQueueUrl when `queue_url` is "".
  std::string queue_name;
  /// Account owning `queue_name` (QueueOwnerAWSAccountId); "": the caller's.
  std::string queue_owner_account_id;
  /// Region signed into requests; "" takes AWS_REGION, else
  /// AWS_DEFAULT_REGION, else "us-east-1" when `endpoint_url` is set.
  std::string region;
  /// Endpoint of an SQS-compatible server ("http://127.0.0.1:9324");
  /// "": https://sqs.<region>.amazonaws.com.
  std::string endpoint_url;
  /// Profile of the shared credentials file when AWS_ACCESS_KEY_ID is not
  /// set; "": AWS_PROFILE, else "default".
  std::string profile;
  /// Long-poll wait of one ReceiveMessage, s (0..20). Default 20.
  std::uint32_t wait_time_s = 20;
  /// Messages asked for by one ReceiveMessage (1..10). Default 10.
  std::uint32_t max_messages = 10;
  /// Concurrent long polls, each on a thread and a connection of its own, so
  /// more than 10 credits are filled at once (1..64). Default 2.
  std::uint32_t receivers = 2;
  /// Visibility timeout given to every received message, and the length of
  /// each heartbeat extension, s (1..43200). Default 30.
  std::uint32_t visibility_timeout_s = 30;
  /// How often the engine extends the visibility of what it still holds, s;
  /// at most a third of `visibility_timeout_s`; 0 turns heartbeats off (a
  /// handler running past the visibility timeout is then redelivered).
  /// Default 10.
  std::uint32_t heartbeat_interval_s = 10;
  /// Queue that dead-letters are sent to; "": dead-letters are left to the
  /// queue's own redrive policy (the queue must have one). Default "".
  std::string dlq_queue_url;
  /// Message attribute (String or Number) holding the idempotency key; "" (or
  /// a message without it) uses the MessageId. Default "".
  std::string key_attribute;
  /// Receives after which a message is dead-lettered unhandled ("receive
  /// count N exceeds M": a message that crashes its consumer every time);
  /// 0 disables; otherwise at least retry.max_attempts. Default 10.
  std::uint32_t max_receives = 10;
  /// Bound of one HTTP request (a long poll adds its wait), ms. Default 10000.
  std::uint32_t request_timeout_ms = 10000;
  /// Longest wait at start for the server to answer, ms. Default 10000.
  std::uint32_t startup_timeout_ms = 10000;
};

/// Returns the region requests are signed for: `s.region`, else AWS_REGION,
/// else AWS_DEFAULT_REGION, else "us-east-1" when an endpoint is set; ""
/// when none of them gives one.
std::string effective_region(const sqs_transport_settings& s);

/// Returns the last path segment of `queue_url` (the queue's name).
std::string queue_name_of(const std::string& queue_url);

} // namespace mailroom
