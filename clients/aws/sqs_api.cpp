#include "clients/aws/sqs_api.hpp"

#include <charconv>
#include <memory>
#include <utility>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "clients/aws/sqs_json.hpp"

namespace mailroom {

namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::size_t max_batch = 10;

using sqs_json::text;

std::int64_t number(std::string_view digits) {
  std::int64_t value = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), value);
  return value;
}

std::int64_t number_attribute(const std::map<std::string, std::string>& attributes,
                              const std::string& name) {
  auto it = attributes.find(name);
  return it == attributes.end() ? 0 : number(it->second);
}

std::string text_attribute(const std::map<std::string, std::string>& attributes,
                           const std::string& name) {
  auto it = attributes.find(name);
  return it == attributes.end() ? std::string{} : it->second;
}

std::map<std::string, std::string> text_map(const json& object, const char* name) {
  std::map<std::string, std::string> out;
  auto it = object.find(name);
  if (it != object.end() && it->is_object()) {
    for (const auto& [key, value] : it->items()) {
      out[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
  }
  return out;
}

std::string md5_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_md5(), nullptr);
  return sigv4::hex({reinterpret_cast<const char*>(digest), size});
}

io_result out_of_range(const char* what, long long value, int low, int high) {
  return io_result::fatal(std::string{what} + " " + std::to_string(value) + " is outside " +
                          std::to_string(low) + ".." + std::to_string(high));
}

// One typed call: checks nothing was refused, parses the JSON reply with
// `parse` (returning an io_result) and prefixes any failure with the action.
// A text field that is not UTF-8 fails as `bad_text` before sending.
template <class T, class Parse>
sqs_reply<T> typed_call(sqs_api& api, std::string_view action, const json& request,
                        Parse parse, milliseconds extra = {},
                        failure_class bad_text = failure_class::fatal) {
  sqs_reply<T> out;
  auto prefix = "SQS " + std::string{action} + ": ";
  std::string body;
  try {
    body = request.dump();
  } catch (const json::exception&) {
    out.status = {bad_text, prefix + "a text field is not valid UTF-8"};
    return out;
  }
  auto raw = api.call(action, std::move(body), extra);
  out.status = std::move(raw.status);
  out.error = std::move(raw.error);
  if (!out) {
    return out;
  }
  // Delete and ChangeMessageVisibility answer 200 with an empty body.
  auto reply = raw.value.empty() ? json::object() : json::parse(raw.value, nullptr, false);
  if (!reply.is_object()) {
    out.status = io_result::transient(prefix + "the reply is not a JSON object");
    return out;
  }
  try {
    out.status = parse(reply, out.value);
  } catch (const json::exception& e) {
    out.status = io_result::transient(prefix + "unexpected reply: " + e.what());
  }
  if (!out) {
    out.status.what = prefix + out.status.what;
  }
  return out;
}

sqs_message parse_message(const json& m) {
  sqs_message out;
  out.message_id = text(m, "MessageId");
  out.receipt_handle = text(m, "ReceiptHandle");
  out.body = text(m, "Body");
  out.md5_of_body = text(m, "MD5OfBody");
  out.attributes = text_map(m, "Attributes");
  out.approximate_receive_count =
      static_cast<int>(number_attribute(out.attributes, "ApproximateReceiveCount"));
  out.sent_timestamp_ms = number_attribute(out.attributes, "SentTimestamp");
  out.first_receive_timestamp_ms =
      number_attribute(out.attributes, "ApproximateFirstReceiveTimestamp");
  out.message_group_id = text_attribute(out.attributes, "MessageGroupId");
  out.message_deduplication_id = text_attribute(out.attributes, "MessageDeduplicationId");
  out.sequence_number = text_attribute(out.attributes, "SequenceNumber");
  if (auto it = m.find("MessageAttributes"); it != m.end() && it->is_object()) {
    for (const auto& [name, value] : it->items()) {
      out.message_attributes[name] = {text(value, "DataType"), text(value, "StringValue"),
                                      text(value, "BinaryValue")};
    }
  }
  return out;
}

json attributes_json(const sqs_message_attributes& attributes) {
  json out = json::object();
  for (const auto& [name, value] : attributes) {
    bool binary = value.data_type.rfind("Binary", 0) == 0;
    out[name] = {{"DataType", value.data_type},
                 {binary ? "BinaryValue" : "StringValue",
                  binary ? value.binary_value : value.string_value}};
  }
  return out;
}

// Ids default to the entry's index, so callers need not invent any.
template <class Entry>
std::vector<std::string> batch_ids(const std::vector<Entry>& entries) {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    ids.push_back(entries[i].id.empty() ? std::to_string(i) : entries[i].id);
  }
  return ids;
}

io_result check_receive(const sqs_receive_request& r) {
  if (r.max_messages < 1 || r.max_messages > 10) {
    return out_of_range("SQS ReceiveMessage: MaxNumberOfMessages", r.max_messages, 1, 10);
  }
  if (r.wait_time_s < 0 || r.wait_time_s > 20) {
    return out_of_range("SQS ReceiveMessage: WaitTimeSeconds", r.wait_time_s, 0, 20);
  }
  if (r.visibility_timeout_s &&
      (*r.visibility_timeout_s < 0 || *r.visibility_timeout_s > 43200)) {
    return out_of_range("SQS ReceiveMessage: VisibilityTimeout", *r.visibility_timeout_s, 0,
                        43200);
  }
  return io_result::success();
}

io_result check_batch_size(std::size_t size) {
  return size >= 1 && size <= max_batch
             ? io_result::success()
             : out_of_range("the number of entries", static_cast<long long>(size), 1,
                            static_cast<int>(max_batch));
}

// Maps Successful / Failed back onto the entries in the order sent.
io_result parse_batch(const json& reply, const std::vector<std::string>& ids,
                      sqs_batch_results& out) {
  std::map<std::string, sqs_batch_entry_result> by_id;
  if (auto it = reply.find("Successful"); it != reply.end() && it->is_array()) {
    for (const auto& entry : *it) {
      by_id[text(entry, "Id")] = {text(entry, "Id"), true, {}, {}, false};
    }
  }
  if (auto it = reply.find("Failed"); it != reply.end() && it->is_array()) {
    for (const auto& entry : *it) {
      auto fault = entry.find("SenderFault");
      by_id[text(entry, "Id")] = {text(entry, "Id"), false,
                                  normalized_sqs_code(text(entry, "Code")),
                                  text(entry, "Message"),
                                  fault != entry.end() && fault->is_boolean() &&
                                      fault->get<bool>()};
    }
  }
  for (const auto& id : ids) {
    auto it = by_id.find(id);
    out.entries.push_back(it != by_id.end()
                              ? it->second
                              : sqs_batch_entry_result{id, false, "NotAnswered",
                                                       "listed neither as Successful nor "
                                                       "as Failed",
                                                       false});
  }
  return io_result::success();
}

std::optional<sqs_redrive_policy> parse_redrive(const std::string& text_policy) {
  auto policy = json::parse(text_policy, nullptr, false);
  if (!policy.is_object()) {
    return std::nullopt;
  }
  sqs_redrive_policy out;
  out.dead_letter_target_arn = text(policy, "deadLetterTargetArn");
  // AWS writes maxReceiveCount as a number, some servers as a string.
  if (auto it = policy.find("maxReceiveCount"); it != policy.end()) {
    out.max_receive_count = it->is_number_integer()
                                ? it->get<int>()
                                : static_cast<int>(number(text(policy, "maxReceiveCount")));
  }
  return out;
}

struct curl_url_deleter {
  void operator()(CURLU* url) const noexcept { curl_url_cleanup(url); }
};

std::string url_part(CURLU* url, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, 0) != CURLUE_OK || value == nullptr) {
    return {};
  }
  std::string out{value};
  curl_free(value);
  return out;
}

} // namespace

aws_request sqs_json_request(std::string host, std::string path, std::string_view action,
                             std::string json) {
  aws_request request;
  request.method = "POST";
  request.path = std::move(path);
  request.headers = {{"Host", std::move(host)},
                     {"Content-Type", "application/x-amz-json-1.0"},
                     {"X-Amz-Target", "AmazonSQS." + std::string{action}}};
  request.payload = std::move(json);
  return request;
}

std::size_t sqs_batch_results::failed() const {
  std::size_t n = 0;
  for (const auto& entry : entries) {
    n += entry.ok ? 0 : 1;
  }
  return n;
}

sqs_api::sqs_api(sqs_settings settings, aws_credentials credentials)
    : settings_(std::move(settings)), credentials_(std::move(credentials)),
      scope_{settings_.region, "sqs"}, http_(settings_.http) {
  endpoint_ = settings_.endpoint.empty()
                  ? "https://sqs." + settings_.region + ".amazonaws.com"
                  : settings_.endpoint;
  parse_endpoint();
}

void sqs_api::parse_endpoint() {
  std::unique_ptr<CURLU, curl_url_deleter> url{curl_url()};
  if (!url || curl_url_set(url.get(), CURLUPART_URL, endpoint_.c_str(), 0) != CURLUE_OK) {
    endpoint_error_ = "endpoint '" + endpoint_ + "' is not a URL";
    return;
  }
  auto scheme = url_part(url.get(), CURLUPART_SCHEME);
  if (scheme != "http" && scheme != "https") {
    endpoint_error_ = "endpoint '" + endpoint_ + "' is neither http nor https";
    return;
  }
  // The Host header carries the port only when the URL names one, as
  // curl and botocore send it.
  auto port = url_part(url.get(), CURLUPART_PORT);
  host_ = url_part(url.get(), CURLUPART_HOST) + (port.empty() ? "" : ":" + port);
  origin_ = scheme + "://" + host_;
  path_ = url_part(url.get(), CURLUPART_PATH);
  if (path_.empty()) {
    path_ = "/";
  }
}

void sqs_api::set_credentials(aws_credentials credentials) {
  credentials_ = std::move(credentials);
}

std::string sqs_api::scrubbed(std::string text) const {
  for (auto secret : {credentials_.secret_access_key.reveal(),
                      credentials_.session_token.reveal()}) {
    if (secret.empty()) {
      continue;
    }
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
      text.replace(at, secret.size(), "[redacted]");
    }
  }
  return text;
}

sqs_reply<std::string> sqs_api::call(std::string_view action, std::string json_text,
                                     milliseconds extra_time) {
  sqs_reply<std::string> out;
  auto prefix = "SQS " + std::string{action} + ": ";
  if (!endpoint_error_.empty()) {
    out.status = io_result::fatal(prefix + endpoint_error_);
    return out;
  }
  auto request = sqs_json_request(host_, path_, action, std::move(json_text));
  sigv4::sign(request, credentials_, scope_, std::chrono::system_clock::now());
  auto answer = http_.perform(origin_, request, settings_.http.request_timeout + extra_time);
  if (answer) {
    out.value = std::move(answer.response.body);
    return out;
  }
  if (answer.response.status == 0) {
    out.status = {answer.status.failure, prefix + answer.status.what};
    return out;
  }
  out.error = parse_sqs_error(answer.response);
  out.error.message = scrubbed(std::move(out.error.message));
  out.status = {classify_sqs_error(out.error), prefix + out.error.describe()};
  return out;
}

sqs_reply<std::string> sqs_api::get_queue_url(const std::string& queue_name,
                                              const std::string& owner_account_id) {
  json request = {{"QueueName", queue_name}};
  if (!owner_account_id.empty()) {
    request["QueueOwnerAWSAccountId"] = owner_account_id;
  }
  return typed_call<std::string>(*this, "GetQueueUrl", request,
                                 [](const json& reply, std::string& url) {
                                   url = text(reply, "QueueUrl");
                                   return url.empty() ? io_result::transient("no QueueUrl")
                                                      : io_result::success();
                                 });
}

sqs_reply<std::string> sqs_api::get_queue_url_of_arn(const std::string& arn) {
  // arn:aws:sqs:<region>:<account>:<name>
  auto last = arn.rfind(':');
  auto before = last == std::string::npos || last == 0 ? std::string::npos
                                                       : arn.rfind(':', last - 1);
  if (arn.rfind("arn:", 0) != 0 || before == std::string::npos || last + 1 >= arn.size()) {
    sqs_reply<std::string> out;
    out.status = io_result::fatal("not an SQS queue ARN: \"" + arn + "\"");
    return out;
  }
  return get_queue_url(arn.substr(last + 1), arn.substr(before + 1, last - before - 1));
}

sqs_reply<sqs_queue_attributes>
sqs_api::get_queue_attributes(const std::string& queue_url,
                              const std::vector<std::string>& names) {
  json request = {{"QueueUrl", queue_url}, {"AttributeNames", names}};
  return typed_call<sqs_queue_attributes>(
      *this, "GetQueueAttributes", request, [](const json& reply, sqs_queue_attributes& a) {
        a.all = text_map(reply, "Attributes");
        a.approximate_number_of_messages = number_attribute(a.all, "ApproximateNumberOfMessages");
        a.approximate_number_of_messages_not_visible =
            number_attribute(a.all, "ApproximateNumberOfMessagesNotVisible");
        a.approximate_number_of_messages_delayed =
            number_attribute(a.all, "ApproximateNumberOfMessagesDelayed");
        a.visibility_timeout_s = static_cast<int>(number_attribute(a.all, "VisibilityTimeout"));
        a.fifo = text_attribute(a.all, "FifoQueue") == "true";
        a.queue_arn = text_attribute(a.all, "QueueArn");
        if (auto it = a.all.find("RedrivePolicy"); it != a.all.end()) {
          a.redrive_policy = parse_redrive(it->second);
        }
        return io_result::success();
      });
}

sqs_reply<std::vector<sqs_message>>
sqs_api::receive_message(const sqs_receive_request& r) {
  if (auto limits = check_receive(r); !limits) {
    return {std::move(limits), {}, {}};
  }
  json request = {{"QueueUrl", r.queue_url},
                  {"MaxNumberOfMessages", r.max_messages},
                  {"WaitTimeSeconds", r.wait_time_s}};
  if (r.visibility_timeout_s) {
    request["VisibilityTimeout"] = *r.visibility_timeout_s;
  }
  if (!r.system_attribute_names.empty()) {
    // The current name and the deprecated one: older servers know only the latter.
    request["MessageSystemAttributeNames"] = r.system_attribute_names;
    request["AttributeNames"] = r.system_attribute_names;
  }
  if (!r.message_attribute_names.empty()) {
    request["MessageAttributeNames"] = r.message_attribute_names;
  }
  if (!r.receive_request_attempt_id.empty()) {
    request["ReceiveRequestAttemptId"] = r.receive_request_attempt_id;
  }
  return typed_call<std::vector<sqs_message>>(
      *this, "ReceiveMessage", request,
      [](const json& reply, std::vector<sqs_message>& messages) {
        auto it = reply.find("Messages");
        if (it == reply.end() || !it->is_array()) {
          return io_result::success(); // none came
        }
        for (const auto& m : *it) {
          messages.push_back(parse_message(m));
          const auto& got = messages.back();
          if (!got.md5_of_body.empty() && got.md5_of_body != md5_hex(got.body)) {
            return io_result::transient("the body of message " + got.message_id +
                                        " does not match its MD5");
          }
        }
        return io_result::success();
      },
      seconds{r.wait_time_s});
}

sqs_reply<sqs_sent_message> sqs_api::send_message(const sqs_send_request& r) {
  if (r.delay_s && (*r.delay_s < 0 || *r.delay_s > 900)) {
    return {out_of_range("SQS SendMessage: DelaySeconds", *r.delay_s, 0, 900), {}, {}};
  }
  json request = {{"QueueUrl", r.queue_url}, {"MessageBody", r.body}};
  if (!r.attributes.empty()) {
    request["MessageAttributes"] = attributes_json(r.attributes);
  }
  if (!r.group_id.empty()) {
    request["MessageGroupId"] = r.group_id;
  }
  if (!r.deduplication_id.empty()) {
    request["MessageDeduplicationId"] = r.deduplication_id;
  }
  if (r.delay_s) {
    request["DelaySeconds"] = *r.delay_s;
  }
  auto expected_md5 = md5_hex(r.body);
  return typed_call<sqs_sent_message>(
      *this, "SendMessage", request,
      [&](const json& reply, sqs_sent_message& sent) {
        sent = {text(reply, "MessageId"), text(reply, "MD5OfMessageBody"),
                text(reply, "SequenceNumber")};
        if (sent.message_id.empty()) {
          return io_result::transient("no MessageId");
        }
        // The message is stored either way: a mismatch is only reported.
        return sent.md5_of_body.empty() || sent.md5_of_body == expected_md5
                   ? io_result::success()
                   : io_result::transient("the stored body of message " + sent.message_id +
                                          " does not match its MD5");
      },
      {}, failure_class::poison);
}

sqs_reply<sqs_batch_results>
sqs_api::delete_message_batch(const std::string& queue_url,
                              const std::vector<sqs_delete_entry>& entries) {
  if (auto size = check_batch_size(entries.size()); !size) {
    return {io_result::fatal("SQS DeleteMessageBatch: " + size.what), {}, {}};
  }
  auto ids = batch_ids(entries);
  json list = json::array();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    list.push_back({{"Id", ids[i]}, {"ReceiptHandle", entries[i].receipt_handle}});
  }
  json request = {{"QueueUrl", queue_url}, {"Entries", list}};
  return typed_call<sqs_batch_results>(
      *this, "DeleteMessageBatch", request,
      [&](const json& reply, sqs_batch_results& out) { return parse_batch(reply, ids, out); });
}

sqs_reply<sqs_empty> sqs_api::change_message_visibility(const std::string& queue_url,
                                                        const std::string& receipt_handle,
                                                        int visibility_timeout_s) {
  if (visibility_timeout_s < 0 || visibility_timeout_s > 43200) {
    return {out_of_range("SQS ChangeMessageVisibility: VisibilityTimeout",
                         visibility_timeout_s, 0, 43200),
            {}, {}};
  }
  json request = {{"QueueUrl", queue_url},
                  {"ReceiptHandle", receipt_handle},
                  {"VisibilityTimeout", visibility_timeout_s}};
  return typed_call<sqs_empty>(*this, "ChangeMessageVisibility", request,
                               [](const json&, sqs_empty&) { return io_result::success(); });
}

sqs_reply<sqs_batch_results>
sqs_api::change_message_visibility_batch(const std::string& queue_url,
                                         const std::vector<sqs_visibility_entry>& entries) {
  if (auto size = check_batch_size(entries.size()); !size) {
    return {io_result::fatal("SQS ChangeMessageVisibilityBatch: " + size.what), {}, {}};
  }
  auto ids = batch_ids(entries);
  json list = json::array();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    list.push_back({{"Id", ids[i]},
                    {"ReceiptHandle", entries[i].receipt_handle},
                    {"VisibilityTimeout", entries[i].visibility_timeout_s}});
  }
  json request = {{"QueueUrl", queue_url}, {"Entries", list}};
  return typed_call<sqs_batch_results>(
      *this, "ChangeMessageVisibilityBatch", request,
      [&](const json& reply, sqs_batch_results& out) { return parse_batch(reply, ids, out); });
}

} // namespace mailroom
