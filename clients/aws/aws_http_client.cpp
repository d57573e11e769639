#include "clients/aws/aws_http_client.hpp"

#include <algorithm>
#include <mutex>

#include <curl/curl.h>

namespace mailroom {

namespace {

struct slist_deleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using slist_ptr = std::unique_ptr<curl_slist, slist_deleter>;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Retrying cannot heal these: the configuration is wrong.
bool fatal_curl_error(CURLcode code) {
  switch (code) {
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_NOT_BUILT_IN:
  case CURLE_BAD_FUNCTION_ARGUMENT:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
    return true;
  default:
    return false;
  }
}

slist_ptr header_list(const aws_request& request) {
  curl_slist* list = nullptr;
  for (const auto& [name, value] : request.headers) {
    // "Name;" is curl's spelling of a header with an empty value.
    auto line = value.empty() ? name + ";" : name + ": " + value;
    list = curl_slist_append(list, line.c_str());
  }
  // No "Expect: 100-continue" round trip before a large body.
  list = curl_slist_append(list, "Expect:");
  return slist_ptr{list};
}

} // namespace

void curl_easy_deleter::operator()(void* handle) const noexcept {
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

failure_class classify_http_status(long status) {
  if (status >= 200 && status < 300) {
    return failure_class::none;
  }
  if (status >= 500 || status == 429 || status == 0) {
    return failure_class::transient;
  }
  return failure_class::fatal;
}

const std::string* aws_http_response::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) {
      return &value;
    }
  }
  return nullptr;
}

aws_http_client::aws_http_client(aws_http_settings settings)
    : settings_(std::move(settings)) {
  global_init();
  handle_.reset(curl_easy_init());
}

aws_http_client::~aws_http_client() = default;

std::size_t aws_http_client::on_body(char* data, std::size_t size, std::size_t count,
                                     void* self) {
  auto& client = *static_cast<aws_http_client*>(self);
  auto bytes = size * count;
  if (client.current_->body.size() + bytes > client.settings_.max_response_bytes) {
    client.too_large_ = true;
    return 0; // curl aborts the transfer with CURLE_WRITE_ERROR
  }
  client.current_->body.append(data, bytes);
  return bytes;
}

std::size_t aws_http_client::on_header(char* data, std::size_t size, std::size_t count,
                                       void* self) {
  auto& client = *static_cast<aws_http_client*>(self);
  std::string_view line{data, size * count};
  if (line.rfind("HTTP/", 0) == 0) {
    client.current_->headers.clear(); // a new response (after a 100 Continue)
    return line.size();
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) {
    return line.size();
  }
  auto name = ascii_lower(ascii_trim(line.substr(0, colon)));
  const auto& kept = client.settings_.kept_headers;
  if (std::find(kept.begin(), kept.end(), name) != kept.end()) {
    client.current_->headers.emplace_back(name, std::string{ascii_trim(line.substr(colon + 1))});
  }
  return line.size();
}

int aws_http_client::on_progress(void* self, std::int64_t, std::int64_t now_down,
                                 std::int64_t, std::int64_t) {
  auto& client = *static_cast<aws_http_client*>(self);
  bool answered = now_down > 0 || !client.current_->headers.empty();
  return client.abort_flag_ != nullptr && client.abort_flag_->load() && !answered ? 1 : 0;
}

void aws_http_client::prepare(const std::string& url, const aws_request& request,
                              std::chrono::milliseconds timeout, curl_slist* headers) {
  auto* h = static_cast<CURL*>(handle_.get());
  // A reset keeps the live connections, so each call starts from known options.
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  // No signals: timeouts from any thread. curl 7.88 writes TLS records through
  // its own socket layer with MSG_NOSIGNAL, so a dead peer cannot raise SIGPIPE.
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(settings_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, settings_.verify_tls ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, settings_.verify_tls ? 2L : 0L);
  if (!settings_.ca_file.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO, settings_.ca_file.c_str());
  }
  if (request.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.payload.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.payload.size()));
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &aws_http_client::on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &aws_http_client::on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_);
  if (abort_flag_ != nullptr) {
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &aws_http_client::on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  }
}

aws_http_result aws_http_client::perform(std::string_view origin, const aws_request& request,
                                         std::chrono::milliseconds timeout) {
  ++calls_;
  auto path = request.path.empty() ? std::string{"/"} : request.path;
  auto where = request.method + " " + std::string{origin} + path;
  aws_http_result result;
  if (!handle_) {
    result.status = io_result::fatal(where + ": curl_easy_init failed");
    return result;
  }
  auto query = encoded_query(request.query);
  auto url = std::string{origin} + path + (query.empty() ? "" : "?" + query);
  auto headers = header_list(request);
  prepare(url, request, timeout.count() > 0 ? timeout : settings_.request_timeout,
          headers.get());
  current_ = &result.response;
  too_large_ = false;
  error_[0] = '\0';
  auto* h = static_cast<CURL*>(handle_.get());
  CURLcode code = curl_easy_perform(h);
  current_ = nullptr;
  long connects = 0;
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
  connections_opened_ += static_cast<std::uint64_t>(connects);
  if (code != CURLE_OK) {
    auto why = too_large_ ? "response larger than " +
                                std::to_string(settings_.max_response_bytes) + " bytes"
                          : std::string{curl_easy_strerror(code)} +
                                (error_[0] != '\0' ? std::string{": "} + error_ : "");
    why = where + ": " + why;
    result.status = fatal_curl_error(code) ? io_result::fatal(why) : io_result::transient(why);
    result.response = {}; // half an answer is no answer
    return result;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.response.status);
  auto cls = classify_http_status(result.response.status);
  if (cls != failure_class::none) {
    result.status = {cls, where + ": HTTP " + std::to_string(result.response.status)};
  }
  return result;
}

} // namespace mailroom
