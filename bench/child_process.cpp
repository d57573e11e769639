#include "child_process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "posix/child_process.hpp"

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
  posix::spawn_options options;
  options.argv = argv;
  options.out = posix::stdio_target::pipe();
  int error = 0;
  auto child = posix::child_process::spawn(options, error);
  if (!child) {
    return r;
  }
  r.started = true;
  int out = child->stdout_pipe().get();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      child->signal(SIGKILL);
      r.timed_out = true;
      break;
    }
    pollfd p{out, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) {
      break;
    }
    if (n <= 0) {
      continue;
    }
    auto got = read(out, buf, sizeof buf);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break; // end of file: the child closed stdout (normally: it exited)
    }
    r.out.append(buf, static_cast<std::size_t>(got));
  }
  int status = child->wait();
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
