#pragma once

// Test support: a real server (redis-server, a Kafka broker, ElasticMQ) run
// as a child process with its output in a log file, started until it
// answers, and stopped, killed, paused and restarted for outage tests.

#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <csignal>

#include "posix/child_process.hpp"

namespace mailroom::testing {

/// One server child process.
class server_process {
public:
  /// Describes the server: its command line and the file its stdout and
  /// stderr are appended to.
  server_process(std::vector<std::string> argv, std::string log_path)
      : argv_(std::move(argv)), log_path_(std::move(log_path)) {}

  /// Stops the server (SIGTERM, then SIGKILL).
  ~server_process() { stop(); }

  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  /// Replaces the command line used by the next start().
  void set_argv(std::vector<std::string> argv) { argv_ = std::move(argv); }

  /// Starts the server and waits until `ready()` holds, at most `limit`.
  /// Returns false, with the reason and the log in `why`, when it could not
  /// be started, exited, or did not become ready (it is stopped then).
  bool start(const std::function<bool()>& ready, std::chrono::milliseconds limit,
             std::string& why) {
    posix::spawn_options options;
    options.argv = argv_;
    options.out = posix::stdio_target::append_to(log_path_);
    options.err = posix::stdio_target::append_to(log_path_);
    int error = 0;
    child_ = posix::child_process::spawn(options, error);
    if (!child_) {
      why = "cannot start " + argv_.front() + " (errno " + std::to_string(error) + ")";
      return false;
    }
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (child_->try_wait()) {
        child_.reset();
        why = argv_.front() + " exited at once; its log:\n" + log();
        return false;
      }
      if (ready()) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    why = argv_.front() + " did not answer within " + std::to_string(limit.count()) +
          " ms; its log:\n" + log();
    stop();
    return false;
  }

  /// Returns true while the server process runs.
  bool running() { return child_ && !child_->exited(); }

  /// Kills the server with SIGKILL and reaps it.
  void kill() {
    if (child_) {
      child_->signal(SIGKILL);
      child_->wait();
      child_.reset();
    }
  }

  /// Stops the server with SIGTERM (SIGKILL after `grace`) and reaps it.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds{10}) {
    if (!child_) {
      return;
    }
    child_->signal(SIGTERM);
    child_->signal(SIGCONT); // a paused server must wake up to die of SIGTERM
    if (!child_->wait_for(grace)) {
      child_->signal(SIGKILL);
      child_->wait();
    }
    child_.reset();
  }

  /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
  void pause() {
    if (child_) {
      child_->signal(SIGSTOP);
    }
  }

  /// Thaws a paused server (SIGCONT).
  void resume() {
    if (child_) {
      child_->signal(SIGCONT);
    }
  }

  /// Returns what the server logged so far.
  std::string log() const {
    std::ifstream in{log_path_};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  /// Returns the log file's path.
  const std::string& log_path() const { return log_path_; }

  /// Returns the server's process id, 0 when it is not running.
  pid_t pid() const { return child_ ? child_->pid() : 0; }

private:
  std::vector<std::string> argv_;
  std::string log_path_;
  std::optional<posix::child_process> child_;
};

} // namespace mailroom::testing
