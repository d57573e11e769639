#include "app/http_endpoint.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

#include <httplib.h>

namespace mailroom {

struct http_endpoint::impl {
  httplib::Server server;
  std::thread thread;
  int port = 0;
};

namespace {

void route(httplib::Server& server, const char* path, std::function<http_answer()> answer) {
  server.Get(path, [answer = std::move(answer)](const httplib::Request&, httplib::Response& res) {
    auto a = answer();
    res.status = a.status;
    res.set_content(a.body, a.content_type.c_str());
  });
}

} // namespace

http_endpoint::http_endpoint(const std::string& host, int port, http_routes routes)
    : impl_(std::make_unique<impl>()) {
  auto& server = impl_->server;
  // Two threads: a scrape and a probe at once; more would only take cores
  // from the engine.
  server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a
  // second instance on the same port binds too and takes half the scrapes.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  route(server, "/metrics", std::move(routes.metrics));
  route(server, "/healthz", std::move(routes.health));
  route(server, "/readyz", std::move(routes.ready));
  impl_->port = port == 0 ? server.bind_to_any_port(host.c_str())
                          : (server.bind_to_port(host.c_str(), port) ? port : -1);
  if (impl_->port <= 0) {
    throw std::runtime_error("http: cannot listen on " + host + ":" + std::to_string(port) +
                             " (address in use, or not an address of this host)");
  }
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  // stop() does nothing before the server runs: a destructor right after
  // this constructor would wait for ever on a server that then starts.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
  while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
}

http_endpoint::~http_endpoint() {
  impl_->server.stop();
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
}

int http_endpoint::port() const { return impl_->port; }

} // namespace mailroom
