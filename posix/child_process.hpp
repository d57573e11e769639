#pragma once

// One child process, started with posix_spawn: the exec handler's command,
// the benchmark's configurations, the servers and binaries the tests start.
// The child is killed and reaped by the destructor unless it was reaped
// already, so no code path leaves a zombie or a stray process behind.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "posix/unique_fd.hpp"

namespace mailroom::posix {

/// Where one standard stream of a child goes.
struct stdio_target {
  enum class kind { inherit, null, file, pipe };
  kind what = kind::inherit; ///< The choice.
  std::string path;          ///< The file, for `file`.
  bool append = false;       ///< For `file`: append instead of truncating.

  /// Shares the parent's stream.
  static stdio_target inherit() { return {}; }
  /// Connects the stream to /dev/null.
  static stdio_target null() { return {kind::null, {}, false}; }
  /// Writes (or reads) `path`, truncated first when written.
  static stdio_target file(std::string path) { return {kind::file, std::move(path), false}; }
  /// Appends to `path`.
  static stdio_target append_to(std::string path) {
    return {kind::file, std::move(path), true};
  }
  /// Connects the stream to a pipe whose other end the parent holds.
  static stdio_target pipe() { return {kind::pipe, {}, false}; }
};

/// How to start a child.
struct spawn_options {
  /// Program and arguments; the program is looked up in PATH unless it holds
  /// a slash.
  std::vector<std::string> argv;
  /// The child's environment as NAME=value entries; nullopt inherits ours.
  std::optional<std::vector<std::string>> env;
  stdio_target in = stdio_target::null();     ///< Standard input.
  stdio_target out = stdio_target::inherit(); ///< Standard output.
  stdio_target err = stdio_target::inherit(); ///< Standard error.
  /// Puts the child in a process group of its own, so kill_group() reaches
  /// whatever it starts.
  bool own_process_group = false;
  /// Starts the child with an empty signal mask and default dispositions for
  /// the common signals, whatever this process blocks or ignores.
  bool reset_signals = false;
};

/// A running (or exited, not yet reaped) child process.
class child_process {
public:
  /// Starts a child; on failure returns nullopt and stores the errno in
  /// `error` (ENOENT: no such program, and so on).
  static std::optional<child_process> spawn(const spawn_options& options, int& error);

  child_process(child_process&& o) noexcept;
  /// Kills and reaps the child held (if any), then takes over `o`'s.
  child_process& operator=(child_process&& o) noexcept;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Kills (the group, when it has its own) and reaps a child not reaped yet.
  ~child_process();

  /// Returns the child's pid.
  pid_t pid() const { return pid_; }

  /// Returns the parent's end of the child's stdin pipe (`pipe` targets).
  unique_fd& stdin_pipe() { return in_; }
  /// Returns the parent's end of the child's stdout pipe.
  unique_fd& stdout_pipe() { return out_; }
  /// Returns the parent's end of the child's stderr pipe.
  unique_fd& stderr_pipe() { return err_; }

  /// Sends `sig` to the child.
  void signal(int sig) const;

  /// Sends SIGKILL to the child's process group (when it has its own) and to
  /// the child. While the child is unreaped its zombie pins the pid, so the
  /// group id cannot belong to an unrelated process.
  void kill_group() const;

  /// Returns true when the child has exited and is not reaped yet.
  bool exited() const;

  /// Reaps the child if it has exited: returns its wait status, or nullopt
  /// while it runs.
  std::optional<int> try_wait();

  /// Waits at most `limit` for the child to exit; returns its wait status,
  /// or nullopt at the deadline (it is left running).
  std::optional<int> wait_for(std::chrono::milliseconds limit);

  /// Waits for the child; returns its wait status, or -1 when the kernel
  /// reaped it itself (SIGCHLD ignored) and the status is lost.
  int wait();

  /// Returns true once the child was reaped.
  bool reaped() const { return reaped_; }

private:
  child_process() = default;

  pid_t pid_ = -1;
  bool own_group_ = false;
  bool reaped_ = false;
  unique_fd in_, out_, err_;
};

/// Returns what a shell shows for wait status `status`: the exit code, or
/// 128 + the signal that ended the child; -1 for a lost status.
int exit_code_of(int status);

} // namespace mailroom::posix
