#pragma once

// The operator's HTTP endpoints of `mailroom run`: /metrics, /healthz and
// /readyz, served by cpp-httplib on threads of their own (never the actor
// scheduler's). The handlers are callbacks, so this file knows nothing of
// the engine; cpp-httplib's header stays in the .cpp.

#include <functional>
#include <memory>
#include <string>

namespace mailroom {

/// A status and a body.
struct http_answer {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// Answers each endpoint.
struct http_routes {
  std::function<http_answer()> metrics; ///< GET /metrics
  std::function<http_answer()> health;  ///< GET /healthz
  std::function<http_answer()> ready;   ///< GET /readyz
};

/// A listening HTTP server; stops when destroyed.
class http_endpoint {
public:
  /// Binds `host`:`port` (0: any free port) and serves `routes`. Throws
  /// std::runtime_error naming the address when it cannot bind.
  http_endpoint(const std::string& host, int port, http_routes routes);
  ~http_endpoint();

  http_endpoint(const http_endpoint&) = delete;
  http_endpoint& operator=(const http_endpoint&) = delete;

  /// Returns the port it listens on.
  int port() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace mailroom
