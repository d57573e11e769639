#pragma once

// Test support: a tiny HTTP/1.1 server on a free loopback port that answers
// each request with the next canned response (the last one repeats) and
// records what it read, so a client's exact bytes (its signature, its
// headers) and its handling of statuses can be checked without a real service.

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>
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

/// A single-threaded HTTP server with canned answers.
class canned_http_server {
public:
  /// One canned answer.
  struct response {
    int status = 200;                 ///< Status code.
    std::vector<std::string> headers; ///< Extra "Name: value" lines.
    std::string body;                 ///< Body (Content-Length is added).
    bool close = false;               ///< Closes the connection after it.
  };

  /// One request as read.
  struct request {
    std::string head;   ///< Request line and headers, CRLF separated.
    std::string body;   ///< Body (by Content-Length).
    int connection = 0; ///< Which accepted connection carried it (1, 2, ...).
  };

  /// Listens on 127.0.0.1 (a free port) and serves `responses` from a thread.
  explicit canned_http_server(std::vector<response> responses)
      : responses_(std::move(responses)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 ||
        ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 8) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("canned_http_server: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread{[this] { serve(); }};
  }

  /// Stops serving and closes every socket.
  ~canned_http_server() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  canned_http_server(const canned_http_server&) = delete;
  canned_http_server& operator=(const canned_http_server&) = delete;

  /// Returns "http://127.0.0.1:PORT".
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// Returns "127.0.0.1:PORT", the Host header a client sends.
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Returns the requests read so far.
  std::vector<request> requests() const {
    std::lock_guard<std::mutex> lock{mutex_};
    return requests_;
  }

  /// Returns how many connections were accepted so far.
  int connections() const { return connections_; }

private:
  // Waits up to 100 ms for `fd` to be readable; false on timeout or stop.
  bool readable(int fd) const {
    pollfd p{fd, POLLIN, 0};
    return !stop_ && ::poll(&p, 1, 100) > 0;
  }

  void serve() {
    while (!stop_) {
      if (!readable(listen_fd_)) {
        continue;
      }
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd >= 0) {
        int id = ++connections_;
        serve_connection(fd, id);
        ::close(fd);
      }
    }
  }

  void serve_connection(int fd, int id) {
    std::string buffer;
    while (!stop_) {
      auto end = buffer.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (!read_more(fd, buffer)) {
          return;
        }
        continue;
      }
      auto length = content_length(buffer.substr(0, end));
      while (buffer.size() < end + 4 + length) {
        if (!read_more(fd, buffer)) {
          return;
        }
      }
      request r{buffer.substr(0, end), buffer.substr(end + 4, length), id};
      buffer.erase(0, end + 4 + length);
      if (!answer(fd, r)) {
        return;
      }
    }
  }

  // Records `r`, writes the next answer; false when the connection ends.
  bool answer(int fd, request r) {
    response next;
    {
      std::lock_guard<std::mutex> lock{mutex_};
      requests_.push_back(std::move(r));
      next = responses_.at(std::min(served_++, responses_.size() - 1));
    }
    std::string text = "HTTP/1.1 " + std::to_string(next.status) + " Canned\r\n";
    for (const auto& header : next.headers) {
      text += header + "\r\n";
    }
    text += "Content-Length: " + std::to_string(next.body.size()) + "\r\n";
    text += next.close ? "Connection: close\r\n\r\n" : "\r\n";
    text += next.body;
    for (std::size_t sent = 0; sent < text.size();) {
      auto n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      sent += static_cast<std::size_t>(n);
    }
    return !next.close;
  }

  bool read_more(int fd, std::string& buffer) {
    while (!readable(fd)) {
      if (stop_) {
        return false;
      }
    }
    char chunk[4096];
    auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) {
      return false;
    }
    buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  static std::size_t content_length(const std::string& head) {
    for (std::size_t at = 0; (at = head.find("\r\n", at)) != std::string::npos;) {
      at += 2;
      auto line = head.substr(at, head.find("\r\n", at) - at);
      auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (auto& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      if (colon != std::string::npos && name == "content-length") {
        return static_cast<std::size_t>(std::strtoull(line.c_str() + colon + 1, nullptr, 10));
      }
    }
    return 0;
  }

  std::vector<response> responses_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  std::vector<request> requests_;
  std::size_t served_ = 0;
  std::thread thread_;
};

} // namespace mailroom::testing
