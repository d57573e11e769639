#include "child_process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace mailroom::bench {

std::string child_result::how() const {
  if (!started) {
    return "could not be started";
  }
  if (timed_out) {
    return "killed at the timeout";
  }
  if (signal != 0) {
    return "killed by signal " + std::to_string(signal);
  }
  return "exit " + std::to_string(exit_code);
}

child_result run_child(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  child_result r;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::vector<char*> args;
  for (auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return r;
  }
  r.started = true;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      r.timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) {
      break;
    }
    if (n <= 0) {
      continue;
    }
    auto got = read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break; // end of file: the child closed stdout (normally: it exited)
    }
    r.out.append(buf, static_cast<std::size_t>(got));
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return r;
}

std::string last_json_line(const std::string& out) {
  std::size_t end = out.size();
  while (end > 0) {
    auto start = out.rfind('\n', end - 1);
    start = (start == std::string::npos) ? 0 : start + 1;
    if (start < end && out[start] == '{') {
      return out.substr(start, end - start);
    }
    if (start == 0) {
      break;
    }
    end = start - 1;
  }
  return {};
}

} // namespace mailroom::bench
