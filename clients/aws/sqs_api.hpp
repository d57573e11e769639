#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "clients/aws/aws_credentials.hpp"
#include "clients/aws/aws_http_client.hpp"
#include "clients/aws/aws_sigv4.hpp"
#include "clients/aws/sqs_types.hpp"

namespace mailroom {

/// Settings of one SQS client. Every field has its default and unit beside it.
struct sqs_settings {
  /// Where requests go: scheme, host, optional port ("http://127.0.0.1:9324"
  /// for ElasticMQ); empty: "https://sqs.REGION.amazonaws.com".
  std::string endpoint;
  std::string region = "us-east-1"; ///< Signed into every request.
  /// Timeouts and TLS. A ReceiveMessage may take `http.request_timeout`
  /// plus its WaitTimeSeconds.
  aws_http_settings http;
};

/// Returns the unsigned request of SQS action `action` ("ReceiveMessage")
/// with the JSON text `json` for an endpoint whose Host header is `host`
/// ("127.0.0.1:9324") and whose path is `path`: `POST`, `Host`,
/// `Content-Type: application/x-amz-json-1.0`, `X-Amz-Target: AmazonSQS.<action>`.
aws_request sqs_json_request(std::string host, std::string path, std::string_view action,
                             std::string json);

/// The SQS JSON protocol (`POST /`, `Content-Type: application/x-amz-json-1.0`,
/// `X-Amz-Target: AmazonSQS.<Action>`), signed with SigV4 for service "sqs",
/// one typed call per action the SQS transport needs.
///
/// Every call is one HTTP round trip, never repeated here: the caller retries
/// what is `transient`, by its own policy. Arguments outside SQS's limits
/// fail `fatal` before anything is sent. Error texts carry the action, the
/// error code and the server's message (with any credential it might echo
/// removed), never a header or a secret.
///
/// Per-message problems are data: a batch call succeeds when the batch was
/// accepted and reports each entry (an old receipt handle fails its entry
/// with "ReceiptHandleIsInvalid"); the caller decides what a failed entry
/// means (for a settle, usually a stale delivery).
///
/// Thread-compatible like its `aws_http_client`: one instance per thread.
/// Neither copyable nor movable.
class sqs_api {
public:
  /// Creates a client for `settings.endpoint` signing with `credentials`.
  /// An endpoint that is no http(s) URL makes every call fail `fatal`.
  sqs_api(sqs_settings settings, aws_credentials credentials);

  sqs_api(const sqs_api&) = delete;
  sqs_api& operator=(const sqs_api&) = delete;
  sqs_api(sqs_api&&) = delete;
  sqs_api& operator=(sqs_api&&) = delete;

  /// Replaces the credentials (temporary ones were refreshed).
  void set_credentials(aws_credentials credentials);

  /// Returns the URL of queue `queue_name`, owned by `owner_account_id`
  /// when given (QueueOwnerAWSAccountId). A missing queue is `fatal` with
  /// the code "QueueDoesNotExist".
  sqs_reply<std::string> get_queue_url(const std::string& queue_name,
                                       const std::string& owner_account_id = {});

  /// Returns the URL of the queue named by `arn`
  /// ("arn:aws:sqs:REGION:ACCOUNT:NAME", a redrive policy's target): a
  /// GetQueueUrl for NAME owned by ACCOUNT. An ARN of another shape is
  /// `fatal`.
  sqs_reply<std::string> get_queue_url_of_arn(const std::string& arn);

  /// Returns attributes `names` ("All", or "ApproximateNumberOfMessages",
  /// "RedrivePolicy", ...) of the queue at `queue_url`.
  sqs_reply<sqs_queue_attributes>
  get_queue_attributes(const std::string& queue_url,
                       const std::vector<std::string>& names = {"All"});

  /// Receives up to `request.max_messages` messages, waiting up to
  /// `request.wait_time_s` for the first; an empty list when none came.
  /// A body whose MD5 does not match fails the call `transient`.
  sqs_reply<std::vector<sqs_message>> receive_message(const sqs_receive_request& request);

  /// Sends one message. A body that is not valid UTF-8 (which SQS cannot
  /// carry) fails `poison` before anything is sent. A stored body whose MD5
  /// differs from the one sent fails `transient`: it was stored, so a retry
  /// stores a second copy.
  sqs_reply<sqs_sent_message> send_message(const sqs_send_request& request);

  /// Deletes up to 10 messages by receipt handle; one result per entry.
  sqs_reply<sqs_batch_results> delete_message_batch(const std::string& queue_url,
                                                    const std::vector<sqs_delete_entry>& entries);

  /// Sets the visibility timeout of one received message to
  /// `visibility_timeout_s` from now (0: visible again at once).
  sqs_reply<sqs_empty> change_message_visibility(const std::string& queue_url,
                                                 const std::string& receipt_handle,
                                                 int visibility_timeout_s);

  /// Sets the visibility timeouts of up to 10 messages; one result per entry.
  sqs_reply<sqs_batch_results>
  change_message_visibility_batch(const std::string& queue_url,
                                  const std::vector<sqs_visibility_entry>& entries);

  /// Calls `action` with the JSON text `json` and returns the reply body as
  /// text, for actions without a typed call; `extra_time` is added to the
  /// request timeout (long polling).
  sqs_reply<std::string> call(std::string_view action, std::string json,
                              std::chrono::milliseconds extra_time = {});

  /// Makes later calls give up once `*flag` is true while no answer has
  /// arrived (see aws_http_client::set_abort_flag).
  void set_abort_flag(const std::atomic<bool>* flag) { http_.set_abort_flag(flag); }

  /// Returns the endpoint calls go to.
  const std::string& endpoint() const { return endpoint_; }

  /// Returns the HTTP client, whose counters show connection reuse.
  const aws_http_client& http() const { return http_; }

private:
  /// Splits `endpoint_` into `origin_`, `path_` and `host_`; sets
  /// `endpoint_error_` when it is no http(s) URL.
  void parse_endpoint();
  /// Removes any credential from a server-supplied text.
  std::string scrubbed(std::string text) const;

  sqs_settings settings_;
  aws_credentials credentials_;
  sigv4::signing_scope scope_;
  std::string endpoint_, origin_, path_, host_, endpoint_error_;
  aws_http_client http_;
};

} // namespace mailroom
