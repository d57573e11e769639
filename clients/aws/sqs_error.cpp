#include "clients/aws/sqs_error.hpp"

#include <array>

#include "clients/aws/sqs_json.hpp"

namespace mailroom {

namespace {

constexpr std::size_t max_message = 512;
constexpr std::string_view legacy_prefix = "AWS.SimpleQueueService.";

constexpr std::array<std::string_view, 12> transient_codes = {
    "ThrottlingException", "Throttling",          "RequestThrottled",
    "ThrottledException",  "ServiceUnavailable",  "ServiceUnavailableException",
    "InternalError",       "InternalFailure",     "InternalServerError",
    "KmsThrottled",        "OverLimit",           "PurgeQueueInProgress"};

// Named so that even a 5xx carrying them stays fatal.
constexpr std::array<std::string_view, 14> fatal_codes = {
    "QueueDoesNotExist",     "QueueDeletedRecently",  "AccessDenied",
    "AccessDeniedException", "InvalidParameterValue", "MissingParameter",
    "InvalidAction",         "InvalidAddress",        "InvalidSecurity",
    "InvalidClientTokenId",  "SignatureDoesNotMatch", "ExpiredToken",
    "UnsupportedOperation",  "ReceiptHandleIsInvalid"};

template <std::size_t N>
bool listed(const std::array<std::string_view, N>& codes, std::string_view code) {
  for (auto c : codes) {
    if (c == code) {
      return true;
    }
  }
  return false;
}

std::string clipped(std::string text) {
  if (text.size() > max_message) {
    text.resize(max_message);
    text += "…";
  }
  return text;
}

} // namespace

std::string sqs_error::describe() const {
  return code + (message.empty() ? "" : ": " + message) + " (HTTP " +
         std::to_string(http_status) + ")";
}

std::string normalized_sqs_code(std::string_view raw) {
  raw = raw.substr(0, raw.find(':'));
  if (auto hash = raw.rfind('#'); hash != std::string_view::npos) {
    raw = raw.substr(hash + 1);
  }
  // x-amzn-query-error is "CODE;Sender".
  raw = raw.substr(0, raw.find(';'));
  if (raw.rfind(legacy_prefix, 0) == 0) {
    raw.remove_prefix(legacy_prefix.size());
    if (raw == "NonExistentQueue") {
      return "QueueDoesNotExist";
    }
  }
  return std::string{raw};
}

sqs_error parse_sqs_error(const aws_http_response& response) {
  sqs_error error;
  error.http_status = response.status;
  error.sender_fault = response.status >= 400 && response.status < 500;
  auto body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_object()) {
    error.code = normalized_sqs_code(sqs_json::text(body, "__type"));
    error.message = sqs_json::text(body, "message");
    if (error.message.empty()) {
      error.message = sqs_json::text(body, "Message");
    }
  }
  for (const char* header : {"x-amzn-query-error", "x-amzn-errortype"}) {
    if (const auto* value = response.header(header); error.code.empty() && value) {
      error.code = normalized_sqs_code(*value);
    }
  }
  if (error.code.empty()) {
    error.code = "Http" + std::to_string(response.status);
    error.message = response.body.substr(0, 200);
  }
  error.message = clipped(std::move(error.message));
  return error;
}

failure_class classify_sqs_error(const sqs_error& error) {
  if (error.code == "InvalidMessageContents") {
    return failure_class::poison; // the body holds characters SQS refuses
  }
  if (listed(transient_codes, error.code)) {
    return failure_class::transient;
  }
  if (listed(fatal_codes, error.code)) {
    return failure_class::fatal;
  }
  // A code we do not know: fatal unless the service owned the fault.
  auto by_status = classify_http_status(error.http_status);
  return by_status == failure_class::none ? failure_class::fatal : by_status;
}

} // namespace mailroom
