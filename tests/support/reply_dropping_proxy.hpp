#pragma once

// Test support: a TCP proxy in front of a server on loopback that can lose
// one reply on purpose. When armed, it forwards the client's request, waits
// for the server's first reply bytes, and then closes the client's
// connection instead of passing them on: the server has executed the
// command, the client never hears about it. That is the one fault a real
// server cannot be made to produce on demand (fault injection, not a mock:
// the server behind it is real).

#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mailroom::testing {

/// Forwards 127.0.0.1:port() to 127.0.0.1:`target_port`, each client
/// connection on a thread of its own; `drop_next_reply()` loses the next
/// reply any of them receives.
class reply_dropping_proxy {
public:
  explicit reply_dropping_proxy(int target_port) : target_port_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (listener_ < 0 ||
        ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener_, 8) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("reply_dropping_proxy: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~reply_dropping_proxy() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }

  reply_dropping_proxy(const reply_dropping_proxy&) = delete;
  reply_dropping_proxy& operator=(const reply_dropping_proxy&) = delete;

  /// Returns the port clients connect to.
  int port() const { return port_; }

  /// Makes the proxy lose the next reply from the server and close that
  /// client's connection.
  void drop_next_reply() { drop_next_replies(1); }

  /// Makes the proxy lose the next `n` replies, each with its connection (a
  /// call that is repeated on a new connection loses its reply again).
  void drop_next_replies(int n) { drop_ = n; }

  /// Makes the proxy pass `passed` replies, then lose the next one (the
  /// second round trip of a call, say).
  void drop_reply_after(int passed) {
    pass_ = passed;
    drop_ = 1;
  }

  /// Returns how many replies were dropped so far.
  int dropped() const { return dropped_.load(); }

private:
  int connect_target() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(target_port_));
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      return fd;
    }
    if (fd >= 0) {
      ::close(fd);
    }
    return -1;
  }

  // Copies what `from` has to `to`; false when either side is done.
  static bool pump(int from, int to) {
    char buf[65536];
    auto n = ::read(from, buf, sizeof buf);
    if (n <= 0) {
      return false;
    }
    for (ssize_t sent = 0; sent < n;) {
      auto w = ::write(to, buf + sent, static_cast<std::size_t>(n - sent));
      if (w <= 0) {
        return false;
      }
      sent += w;
    }
    return true;
  }

  void serve() {
    while (!stop_) {
      pollfd accept_fd{listener_, POLLIN, 0};
      if (::poll(&accept_fd, 1, 20) <= 0) {
        continue;
      }
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) {
        continue;
      }
      int server = connect_target();
      if (server < 0) {
        ::close(client);
        continue;
      }
      relays_.emplace_back([this, client, server] {
        relay(client, server);
        ::close(client);
        ::close(server);
      });
    }
    for (auto& t : relays_) {
      t.join();
    }
  }

  void relay(int client, int server) {
    while (!stop_) {
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(fds, 2, 20) <= 0) {
        continue;
      }
      if (fds[0].revents != 0 && !pump(client, server)) {
        return;
      }
      if (fds[1].revents != 0) {
        if (take_drop()) {
          // The reply is lost with the connection: the client sees EOF.
          ++dropped_;
          return;
        }
        if (!pump(server, client)) {
          return;
        }
      }
    }
  }

  bool take_drop() {
    int p = pass_.load();
    while (drop_.load() > 0 && p > 0) {
      if (pass_.compare_exchange_weak(p, p - 1)) {
        return false;
      }
    }
    int n = drop_.load();
    while (n > 0 && !drop_.compare_exchange_weak(n, n - 1)) {
    }
    return n > 0;
  }

  const int target_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> drop_{0};
  std::atomic<int> pass_{0};
  std::atomic<int> dropped_{0};
  std::thread thread_;
  std::vector<std::thread> relays_; // one per client connection
};

} // namespace mailroom::testing
