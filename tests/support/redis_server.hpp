#pragma once

// Test support: runs a real redis-server on a free loopback port, and can
// kill, pause and restart it on the same port for outage tests.

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>

#include "tests/support/free_port.hpp"
#include "tests/support/server_process.hpp"
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace mailroom::testing {

/// One redis-server child process, without persistence, on 127.0.0.1.
///
/// The binary is `$MAILROOM_REDIS_SERVER` or `redis-server` on PATH; when
/// neither exists the constructor throws, so a test fails loudly instead of
/// skipping (CI installs redis-server through scripts/install-deps.sh).
class redis_server {
public:
  /// Options of the server.
  struct options {
    std::string requirepass; ///< Password of the default user; empty: none.
    /// Directory of an append-only file written with `appendfsync always`,
    /// so the data survives kill() and restart(); empty: no persistence.
    std::string persist_dir;
  };

  /// Starts a server on a free port and waits until it answers PING.
  explicit redis_server(options opts = {}) : options_(std::move(opts)) {
    binary_ = find_binary();
    std::string why;
    // Another process may take the free port between probe and bind: retry.
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      if (try_start(why)) {
        return;
      }
    }
    throw std::runtime_error("redis-server did not start: " + why);
  }

  /// Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its log.
  ~redis_server() {
    stop();
    ::unlink(log_path().c_str());
  }

  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  /// Returns the TCP port the server listens on.
  int port() const { return port_; }

  /// Kills the server with SIGKILL and reaps it.
  void kill() { process_.kill(); }

  /// Stops the server with SIGTERM and reaps it (SIGKILL after 5 s).
  void stop() { process_.stop(std::chrono::seconds{5}); }


  /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
  void pause() { process_.pause(); }

  /// Thaws a paused server (SIGCONT).
  void resume() { process_.resume(); }

  /// Starts the server again on the same port, empty (with its data when
  /// `persist_dir` is set); throws when it does not come up.
  void restart() {
    stop();
    std::string why;
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (try_start(why)) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
    throw std::runtime_error("redis-server did not restart on port " +
                             std::to_string(port_) + ": " + why);
  }

  /// Returns how many times the server ran `command` (lower case, as INFO
  /// commandstats names it, e.g. "evalsha") since it started; -1 when it
  /// cannot be asked (down, or it has a password).
  long long calls_of(const std::string& command) const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    long long calls = -1;
    if (c != nullptr && c->err == 0) {
      redisSetTimeout(c, tv);
      auto* reply = static_cast<redisReply*>(redisCommand(c, "INFO commandstats"));
      if (reply != nullptr && reply->type == REDIS_REPLY_STRING) {
        std::string info{reply->str, reply->len};
        std::string field = "cmdstat_" + command + ":calls=";
        auto at = info.find(field);
        calls = at == std::string::npos ? 0 : std::stoll(info.substr(at + field.size()));
      }
      if (reply != nullptr) {
        freeReplyObject(reply);
      }
    }
    if (c != nullptr) {
      redisFree(c);
    }
    return calls;
  }

  /// Returns what the server logged so far.
  std::string log() const { return process_.log(); }

private:
  static std::string find_binary() {
    if (const char* forced = std::getenv("MAILROOM_REDIS_SERVER"); forced != nullptr) {
      if (::access(forced, X_OK) == 0) {
        return forced;
      }
      throw std::runtime_error(std::string{"MAILROOM_REDIS_SERVER="} + forced +
                               " is not an executable");
    }
    const char* path = std::getenv("PATH");
    std::stringstream dirs{path != nullptr ? path : "/usr/bin:/bin"};
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      auto candidate = (dir.empty() ? std::string{"."} : dir) + "/redis-server";
      if (::access(candidate.c_str(), X_OK) == 0) {
        return candidate;
      }
    }
    throw std::runtime_error("redis-server is not installed (not on PATH, "
                             "MAILROOM_REDIS_SERVER unset): the Redis "
                             "tests need a real server; install it with "
                             "scripts/install-deps.sh (apt-get install "
                             "redis-server)");
  }

  std::string log_path() const {
    return "/tmp/mailroom-redis-" + std::to_string(::getpid()) + "-" +
           std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".log";
  }

  bool try_start(std::string& why) {
    std::vector<std::string> argv{binary_,
                                  "--port",
                                  std::to_string(port_),
                                  "--bind",
                                  "127.0.0.1",
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--daemonize",
                                  "no",
                                  "--dir",
                                  "/tmp"};
    if (!options_.persist_dir.empty()) {
      argv[8] = "yes";
      argv.back() = options_.persist_dir;
      argv.insert(argv.end(), {"--appendfsync", "always"});
    }
    if (!options_.requirepass.empty()) {
      argv.insert(argv.end(), {"--requirepass", options_.requirepass});
    }
    process_.set_argv(std::move(argv));
    return process_.start([this] { return answers_ping(); }, std::chrono::seconds{10}, why);
  }

  // PONG, or NOAUTH from a server with a password, both mean it is up.
  bool answers_ping() const {
    timeval tv{0, 200000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    bool up = false;
    if (c != nullptr && c->err == 0) {
      redisSetTimeout(c, tv);
      const char* ping = "PING";
      std::size_t len = 4;
      auto* reply = static_cast<redisReply*>(redisCommandArgv(c, 1, &ping, &len));
      if (reply != nullptr) {
        std::string text{reply->str != nullptr ? reply->str : "", reply->len};
        up = text == "PONG" || text.rfind("NOAUTH", 0) == 0;
        freeReplyObject(reply);
      }
    }
    if (c != nullptr) {
      redisFree(c);
    }
    return up;
  }

  options options_;
  std::string binary_;
  int port_ = 0;
  server_process process_{{}, log_path()};
};

} // namespace mailroom::testing
