#pragma once

#include <string>
#include <string_view>

#include "clients/aws/aws_http_client.hpp"
#include "core/io_result.hpp"

namespace mailroom {

/// An error SQS answered: its code, message and HTTP status.
struct sqs_error {
  /// The short code ("QueueDoesNotExist"), with older query-protocol codes
  /// mapped to their JSON-protocol names (see `normalized_sqs_code`); empty
  /// when the server answered no error.
  std::string code;
  std::string message; ///< The server's text, at most 512 bytes.
  long http_status = 0; ///< 0 when nothing answered.
  bool sender_fault = false; ///< The request was at fault (4xx), not the service.

  /// Returns true when the server answered an error.
  bool present() const { return !code.empty(); }

  /// Returns "CODE: message (HTTP n)" for error texts.
  std::string describe() const;
};

/// Returns the JSON-protocol name of an SQS error code: drops a namespace
/// ("com.amazonaws.sqs#X" -> "X") and anything after `:`, then maps the
/// older "AWS.SimpleQueueService.NonExistentQueue" to "QueueDoesNotExist"
/// and drops the "AWS.SimpleQueueService." prefix of the others.
std::string normalized_sqs_code(std::string_view raw);

/// Parses the error of a non-2xx `response`: the JSON body's `__type` and
/// `message` (or `Message`), else the `x-amzn-query-error` or
/// `x-amzn-errortype` header; a body that is no JSON error yields the code
/// "HttpNNN" with the start of the body as message.
sqs_error parse_sqs_error(const aws_http_response& response);

/// Returns how to treat `error`: throttling, service unavailable, internal
/// errors, OverLimit and PurgeQueueInProgress are `transient`;
/// InvalidMessageContents (characters SQS refuses in a body) is `poison`; a
/// queue that does not exist, refused access or credentials, invalid
/// parameters and every other code are `fatal`, except that an unknown code
/// with a 5xx (or 429) status is `transient`.
failure_class classify_sqs_error(const sqs_error& error);

} // namespace mailroom
