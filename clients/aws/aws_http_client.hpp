#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "clients/aws/aws_request.hpp"
#include "core/io_result.hpp"

struct curl_slist;

namespace mailroom {

/// Settings of one HTTP client. Every field has its default and unit beside it.
struct aws_http_settings {
  std::chrono::milliseconds connect_timeout{3000};  ///< TCP (and TLS) connect bound, ms.
  /// Bound of a whole request, connect included, ms; a call may ask for
  /// more (long polling adds its wait).
  std::chrono::milliseconds request_timeout{10000};
  bool verify_tls = true; ///< Verifies the server certificate and host name.
  std::string ca_file;    ///< CA bundle (PEM); empty: the system's.
  /// Largest response body accepted, bytes; a larger one fails transiently.
  std::size_t max_response_bytes = 16 * 1024 * 1024;
  /// Response headers kept in `aws_http_response::headers` (lower case).
  std::vector<std::string> kept_headers = {"content-type", "x-amzn-requestid",
                                           "x-amzn-query-error", "x-amzn-errortype",
                                           "retry-after"};
};

/// What a server answered.
struct aws_http_response {
  long status = 0;                  ///< HTTP status; 0 when nothing answered.
  std::string body;                 ///< The body, byte-exact.
  std::vector<aws_field> headers;   ///< The kept headers, names lower case.

  /// Returns the value of kept header `name` (lower case), or null.
  const std::string* header(std::string_view name) const;
};

/// A call's outcome: a status and what the server answered, if anything.
struct aws_http_result {
  /// `none` for a 2xx; `transient` for a curl error (refused, reset,
  /// timeout, DNS), a 5xx or a 429; `fatal` for other statuses and for
  /// errors no retry heals (malformed URL, unsupported scheme, a
  /// certificate that fails verification). The caller refines it from the
  /// body. The text names method, URL and cause, never a header.
  io_result status;
  aws_http_response response; ///< Also filled for a failed status.

  /// Returns true for a 2xx answer.
  explicit operator bool() const { return static_cast<bool>(status); }
};

/// Returns the failure class of HTTP status `status` by the rule above.
failure_class classify_http_status(long status);

/// Frees a libcurl easy handle.
struct curl_easy_deleter {
  /// Calls `curl_easy_cleanup(handle)`.
  void operator()(void* handle) const noexcept;
};

/// A blocking HTTP(S) client over one libcurl easy handle, reused for every
/// call so its connection is kept alive between calls (curl reconnects by
/// itself when the server closed it).
///
/// Thread-compatible, not thread-safe: give each thread its own client.
/// Neither copyable nor movable: it owns live connections. It never logs,
/// and no header (they carry the signature and the session token) reaches
/// an error text. A failed call is not repeated here: whether repeating is
/// safe is the caller's to judge (a timed-out SendMessage may have been done).
class aws_http_client {
public:
  /// Creates a client; `curl_global_init` runs once per process.
  explicit aws_http_client(aws_http_settings settings = {});
  /// Closes the connections.
  ~aws_http_client();

  aws_http_client(const aws_http_client&) = delete;
  aws_http_client& operator=(const aws_http_client&) = delete;
  aws_http_client(aws_http_client&&) = delete;
  aws_http_client& operator=(aws_http_client&&) = delete;

  /// Sends `request` to `origin` ("https://sqs.us-east-1.amazonaws.com",
  /// "http://127.0.0.1:9324": scheme, host, optional port) with its headers
  /// as given, waiting at most `timeout` (zero: `settings().request_timeout`).
  /// curl adds only `Accept: */*` and `Content-Length`, which SigV4 lets go
  /// unsigned; it sends no `Expect: 100-continue`.
  aws_http_result perform(std::string_view origin, const aws_request& request,
                          std::chrono::milliseconds timeout = {});

  /// Makes every later call give up, failing `transient`, once `*flag` is
  /// true while no byte of its answer has arrived yet (a long poll waiting
  /// for messages is cut short at close; an answer on its way is read to
  /// its end). curl looks at the flag about once a second. Null: never.
  void set_abort_flag(const std::atomic<bool>* flag) { abort_flag_ = flag; }

  /// Returns how many connections the client opened so far: 1 after any
  /// number of calls to a server that kept the connection alive.
  std::uint64_t connections_opened() const { return connections_opened_; }

  /// Returns how many calls were made so far.
  std::uint64_t calls() const { return calls_; }

  /// Returns the settings the client was built with.
  const aws_http_settings& settings() const { return settings_; }

private:
  /// Sets every option of one call on the (reset) handle.
  void prepare(const std::string& url, const aws_request& request,
               std::chrono::milliseconds timeout, curl_slist* headers);
  /// Appends a chunk of the body (CURLOPT_WRITEFUNCTION).
  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* self);
  /// Keeps a header line that is in `kept_headers` (CURLOPT_HEADERFUNCTION).
  static std::size_t on_header(char* data, std::size_t size, std::size_t count,
                               void* self);
  /// Aborts the transfer when `abort_flag_` is set (CURLOPT_XFERINFOFUNCTION).
  static int on_progress(void* self, std::int64_t, std::int64_t now_down, std::int64_t,
                         std::int64_t);

  aws_http_settings settings_;
  std::unique_ptr<void, curl_easy_deleter> handle_;
  aws_http_response* current_ = nullptr; // target of the curl callbacks
  bool too_large_ = false;               // the body passed max_response_bytes
  const std::atomic<bool>* abort_flag_ = nullptr;
  std::uint64_t connections_opened_ = 0;
  std::uint64_t calls_ = 0;
  char error_[256] = {};                 // CURLOPT_ERRORBUFFER
};

} // namespace mailroom
