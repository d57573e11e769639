#pragma once

// Test support: runs a program with its stdout and stderr in files, can send
// it signals and waits for it with a deadline.

#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace mailroom::testing {

/// One child process.
class process_runner {
public:
  /// Starts `argv`; stdout and stderr go to files under /tmp.
  explicit process_runner(std::vector<std::string> argv) {
    static int counter = 0;
    auto base = "/tmp/mailroom-test-" + std::to_string(getpid()) + "-" +
                std::to_string(++counter);
    out_path_ = base + ".out";
    err_path_ = base + ".err";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
  }

  ~process_runner() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    unlink(out_path_.c_str());
    unlink(err_path_.c_str());
  }

  /// Sends `sig` to the child.
  void signal(int sig) { kill(pid_, sig); }

  /// Waits at most `limit`; returns the exit code, 128+N for signal N, or -1
  /// on timeout.
  int wait(std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    return -1;
  }

  /// Returns what the child wrote to stdout so far.
  std::string out() const { return slurp(out_path_); }

  /// Returns what the child wrote to stderr so far.
  std::string err() const { return slurp(err_path_); }

private:
  static std::string slurp(const std::string& path) {
    std::ifstream in{path};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  pid_t pid_ = -1;
  bool exited_ = false;
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
