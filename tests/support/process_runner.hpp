#pragma once

// Test support: runs a program with its stdout and stderr in files, can send
// it signals and waits for it with a deadline.

#include <atomic>
#include <chrono>
#include <optional>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "posix/child_process.hpp"

namespace mailroom::testing {

/// One child process.
class process_runner {
public:
  /// Starts `argv`; stdout and stderr go to files under /tmp.
  explicit process_runner(std::vector<std::string> argv) {
    static std::atomic<int> counter{0};
    auto base = "/tmp/mailroom-test-" + std::to_string(getpid()) + "-" +
                std::to_string(++counter);
    out_path_ = base + ".out";
    err_path_ = base + ".err";
    posix::spawn_options options;
    options.argv = std::move(argv);
    options.out = posix::stdio_target::file(out_path_);
    options.err = posix::stdio_target::file(err_path_);
    int error = 0;
    child_ = posix::child_process::spawn(options, error);
  }

  ~process_runner() {
    unlink(out_path_.c_str());
    unlink(err_path_.c_str());
  }

  /// Sends `sig` to the child.
  void signal(int sig) {
    if (child_) {
      child_->signal(sig);
    }
  }

  /// Waits at most `limit`; returns the exit code, 128+N for signal N, or -1
  /// on timeout (or when the child could not be started).
  int wait(std::chrono::milliseconds limit) {
    if (!child_) {
      return -1;
    }
    if (!status_) {
      status_ = child_->wait_for(limit);
    }
    return status_ ? posix::exit_code_of(*status_) : -1;
  }

  /// Returns what the child wrote to stdout so far.
  std::string out() const { return slurp(out_path_); }

  /// Returns what the child wrote to stderr so far.
  std::string err() const { return slurp(err_path_); }

  /// Returns the child's pid, or -1 when it could not be started.
  pid_t pid() const { return child_ ? child_->pid() : -1; }

  /// Returns every thread's stack of the running child, from gdb when the
  /// machine has it (else a line saying so): what a test prints when the
  /// child stopped making progress.
  std::string stacks() const {
    if (!child_ || status_ || std::system("command -v gdb >/dev/null 2>&1") != 0) {
      return "(no stacks: the child is gone or gdb is not installed)\n";
    }
    auto path = out_path_ + ".stacks";
    auto pid = std::to_string(child_->pid());
    // Its children and open files first: a stuck handler shows there.
    auto cmd = "(ps -p " + pid + " --ppid " + pid +
               " -o pid,ppid,pgid,stat,wchan:24,etime,args; grep -E 'State|SigPnd|ShdPnd' /proc/" +
               pid + "/status; ls -l /proc/" +
               pid + "/fd; gdb -p " + pid + " -batch -ex 'thread apply all bt') >" + path +
               " 2>&1";
    (void)std::system(cmd.c_str());
    auto text = slurp(path);
    unlink(path.c_str());
    return text;
  }

private:
  static std::string slurp(const std::string& path) {
    std::ifstream in{path};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::optional<posix::child_process> child_;
  std::optional<int> status_;
  std::string out_path_, err_path_;
};

/// Returns the number in the summary row named `name` ("acked" → 1234), or -1.
inline long long summary_value(const std::string& out, const std::string& name) {
  std::istringstream in{out};
  std::string line;
  while (std::getline(in, line)) {
    auto first = line.find_first_not_of(' ');
    if (first == std::string::npos || line.compare(first, name.size(), name) != 0) {
      continue;
    }
    auto rest = line.substr(first + name.size());
    if (rest.empty() || rest[0] != ' ') {
      continue;
    }
    std::string digits;
    for (char c : rest) {
      if (c >= '0' && c <= '9') {
        digits += c;
      }
    }
    return digits.empty() ? -1 : std::stoll(digits);
  }
  return -1;
}

} // namespace mailroom::testing
