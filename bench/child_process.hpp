#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace mailroom::bench {

/// What a child process left behind.
struct child_result {
  bool started = false;   ///< The program could be spawned.
  bool timed_out = false; ///< It was killed at the deadline.
  int exit_code = -1;     ///< Exit status, or -1 when it did not exit normally.
  int signal = 0;         ///< Signal that ended it, or 0.
  std::string out;        ///< Everything it wrote to stdout.

  /// Returns true when it exited 0 by itself.
  bool ok() const { return started && !timed_out && exit_code == 0; }
  /// Returns a short account of how it ended ("exit 0", "killed by signal 9", ...).
  std::string how() const;
};

/// Runs `argv` (argv[0] looked up in PATH unless it holds a slash) with
/// stdout captured and stderr shared with this process, and waits for it,
/// killing it (SIGKILL, by its own pid) once `timeout` has passed.
///
/// Each benchmark configuration runs in a child of its own, so its peak RSS
/// (getrusage in the child) is the peak of that configuration alone.
child_result run_child(const std::vector<std::string>& argv, std::chrono::seconds timeout);

/// Returns the last line of `out` that starts with '{' (a child's JSON
/// report), or an empty string.
std::string last_json_line(const std::string& out);

} // namespace mailroom::bench
