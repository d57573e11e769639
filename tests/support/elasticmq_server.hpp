#pragma once

// Test support: runs a real SQS server (ElasticMQ, in memory) on a free
// loopback port with the queues a test declares, and can stop, kill, pause and
// restart it on the same port for outage tests.
//
// The jars come from scripts/fetch-servers.sh (ElasticMQ 1.6.11, in
// ${MAILROOM_CACHE_DIR:-$HOME/.cache/mailroom}/elasticmq-1.6.11/lib, or the
// directory $MAILROOM_ELASTICMQ_LIB names); java is found as for the Kafka
// broker. The constructor throws when either is missing. ElasticMQ checks no
// signature: any credentials do. Queue URLs are
// http://127.0.0.1:PORT/000000000000/NAME.
//
// Start-up, measured on the 2-core test machine: ~2.2 s until the queues are
// listed (~3.5 s while a 2-job compile runs beside it); a restart() the same. Messages live in memory: a restart() brings the declared queues back
// empty.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "tests/support/free_port.hpp"
#include "tests/support/kafka_broker.hpp" // jvm_server_detail
#include "tests/support/server_process.hpp"

#ifndef MAILROOM_SOURCE_DIR
#define MAILROOM_SOURCE_DIR "."
#endif

namespace mailroom::testing {

/// An HTTP answer: status code and body.
struct http_answer {
  int status = 0;
  std::string body;
};

/// POSTs `body` to http://127.0.0.1:`port``path` with `headers` ("Name: value"
/// each) over a fresh connection (Connection: close), waiting at most
/// `timeout` for each read or write. Returns nullopt when nothing answered
/// or the answer is not HTTP. A chunked body is returned as sent.
inline std::optional<http_answer> http_post(int port, const std::string& path,
                                            const std::vector<std::string>& headers,
                                            const std::string& body,
                                            std::chrono::milliseconds timeout =
                                                std::chrono::seconds{2}) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return std::nullopt;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                        std::to_string(port) + "\r\nConnection: close\r\n";
  for (const auto& header : headers) {
    request += header + "\r\n";
  }
  request += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::size_t sent = 0;
  while (sent < request.size()) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return std::nullopt;
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string response;
  char buffer[4096];
  for (;;) {
    auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) {
      break; // EOF, or the timeout
    }
    response.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  if (response.rfind("HTTP/", 0) != 0) {
    return std::nullopt;
  }
  auto space = response.find(' ');
  auto end_of_head = response.find("\r\n\r\n");
  if (space == std::string::npos || end_of_head == std::string::npos) {
    return std::nullopt;
  }
  http_answer answer;
  answer.status = std::atoi(response.c_str() + space + 1);
  answer.body = response.substr(end_of_head + 4);
  return answer;
}

/// Returns the command line of tests/support/sqs_client.py (boto3): the
/// interpreter ($MAILROOM_PYTHON, else /usr/bin/python3, whose python3-boto3
/// scripts/install-deps.sh installs, else python3 on PATH) and the script.
inline std::vector<std::string> sqs_client_argv() {
  std::string python = "python3";
  if (const char* forced = std::getenv("MAILROOM_PYTHON"); forced != nullptr && *forced) {
    python = forced;
  } else if (::access("/usr/bin/python3", X_OK) == 0) {
    python = "/usr/bin/python3";
  }
  return {python, std::string{MAILROOM_SOURCE_DIR} + "/tests/support/sqs_client.py"};
}

/// One ElasticMQ child process on 127.0.0.1 with declared queues.
class elasticmq_server {
public:
  /// The ElasticMQ version scripts/fetch-servers.sh fetches.
  static constexpr const char* version = "1.6.11";

  /// A queue the server creates at start.
  struct queue {
    std::string name;             ///< A FIFO queue's name ends in ".fifo".
    bool fifo = false;            ///< A FIFO queue.
    int visibility_timeout_s = 30; ///< The default visibility timeout.
    /// The dead-letter queue (declared in the same list); empty: none.
    std::string dead_letter_queue;
    int max_receive_count = 3;               ///< Receives before the DLQ.
    bool content_based_deduplication = true; ///< FIFO queues only.
  };

  /// Writes the configuration, starts the server on a free port and waits
  /// until it lists every queue.
  explicit elasticmq_server(std::vector<queue> queues,
                            std::chrono::milliseconds start_limit = std::chrono::seconds{60})
      : queues_(std::move(queues)), start_limit_(start_limit) {
    java_ = jvm_server_detail::find_java();
    lib_ = jvm_server_detail::find_lib("MAILROOM_ELASTICMQ_LIB", "elasticmq", version);
    dir_ = jvm_server_detail::make_temp_dir("mailroom-elasticmq-");
    process_ = std::make_unique<server_process>(std::vector<std::string>{},
                                                dir_ + "/elasticmq.log");
    std::string why;
    try {
      for (int attempt = 0; attempt < 3; ++attempt) {
        port_ = free_port();
        jvm_server_detail::write_file(config_path(), config());
        auto begin = std::chrono::steady_clock::now();
        if (try_start(why)) {
          start_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - begin);
          return;
        }
      }
    } catch (...) {
      cleanup();
      throw;
    }
    cleanup();
    throw std::runtime_error("ElasticMQ did not start: " + why);
  }

  /// Stops the server and removes its directory (config and log).
  ~elasticmq_server() { cleanup(); }

  elasticmq_server(const elasticmq_server&) = delete;
  elasticmq_server& operator=(const elasticmq_server&) = delete;

  /// Returns "http://127.0.0.1:PORT", the endpoint_url of an SQS client.
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// Returns the port.
  int port() const { return port_; }

  /// Returns the URL of queue `name` (declared or not).
  std::string queue_url(const std::string& name) const {
    return endpoint() + "/000000000000/" + name;
  }

  /// Returns how long the last start or restart took.
  std::chrono::milliseconds start_time() const { return start_time_; }

  /// Calls SQS action `action` ("ListQueues", "GetQueueAttributes", ...) in
  /// the JSON protocol with `json` as the request; returns the answer, or
  /// nullopt when nothing answered.
  std::optional<http_answer> call(const std::string& action,
                                  const std::string& json = "{}") const {
    return http_post(port_, "/",
                     {"X-Amz-Target: AmazonSQS." + action,
                      "Content-Type: application/x-amz-json-1.0"},
                     json);
  }

  /// Returns true when the server answers ListQueues with every declared
  /// queue.
  bool serves() const {
    auto answer = call("ListQueues");
    if (!answer || answer->status != 200) {
      return false;
    }
    for (const auto& q : queues_) {
      if (answer->body.find("/000000000000/" + q.name + "\"") == std::string::npos) {
        return false;
      }
    }
    return true;
  }

  /// Stops the server with SIGTERM (SIGKILL after 10 s) and reaps it.
  void stop() { process_->stop(std::chrono::seconds{10}); }

  /// Kills the server with SIGKILL and reaps it.
  void kill() { process_->kill(); }

  /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
  void pause() { process_->pause(); }

  /// Thaws a paused server (SIGCONT).
  void resume() { process_->resume(); }

  /// Starts the server again on the same port (stopping it first if it runs),
  /// with the declared queues, empty; throws when it does not come up.
  void restart() {
    stop();
    std::string why;
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto begin = std::chrono::steady_clock::now();
      if (try_start(why)) {
        start_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - begin);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{500});
    }
    throw std::runtime_error("ElasticMQ did not restart on port " + std::to_string(port_) +
                             ": " + why);
  }

  /// Returns what the server logged so far.
  std::string log() const { return process_->log(); }

  /// Returns the server's process id (the JVM), 0 when it is not running.
  pid_t pid() const { return process_->pid(); }

  /// Returns the server's directory (elasticmq.conf, elasticmq.log).
  const std::string& dir() const { return dir_; }

private:
  std::string config_path() const { return dir_ + "/elasticmq.conf"; }

  static std::string quoted(const std::string& text) {
    std::string out = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') {
        out += '\\';
      }
      out += c;
    }
    return out + "\"";
  }

  std::string config() const {
    auto port = std::to_string(port_);
    std::string text =
        "include classpath(\"application.conf\")\n"
        "node-address { protocol = http, host = \"127.0.0.1\", port = " +
        port +
        ", context-path = \"\" }\n"
        "rest-sqs { enabled = true, bind-port = " +
        port +
        ", bind-hostname = \"127.0.0.1\", sqs-limits = strict }\n"
        "rest-stats.enabled = false\n"
        "queues {\n";
    for (const auto& q : queues_) {
      text += "  " + quoted(q.name) + " {\n";
      text += "    defaultVisibilityTimeout = " + std::to_string(q.visibility_timeout_s) +
              " seconds\n";
      if (q.fifo) {
        text += "    fifo = true\n";
        text += std::string{"    contentBasedDeduplication = "} +
                (q.content_based_deduplication ? "true" : "false") + "\n";
      }
      if (!q.dead_letter_queue.empty()) {
        text += "    deadLettersQueue { name = " + quoted(q.dead_letter_queue) +
                ", maxReceiveCount = " + std::to_string(q.max_receive_count) + " }\n";
      }
      text += "  }\n";
    }
    text += "}\n";
    return text;
  }

  bool try_start(std::string& why) {
    process_->set_argv({java_, "-Xmx256m", "-Djava.awt.headless=true",
                        "-Dconfig.file=" + config_path(), "-cp", lib_ + "/*",
                        "org.elasticmq.server.Main"});
    return process_->start([this] { return serves(); }, start_limit_, why);
  }

  void cleanup() {
    if (process_) {
      process_->stop(std::chrono::seconds{10});
      process_.reset();
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  std::vector<queue> queues_;
  std::chrono::milliseconds start_limit_;
  std::string java_, lib_, dir_;
  int port_ = 0;
  std::chrono::milliseconds start_time_{0};
  std::unique_ptr<server_process> process_;
};

} // namespace mailroom::testing
