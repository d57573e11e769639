#pragma once

#include <csignal>

namespace mailroom {

/// Keeps a write to a dead peer from killing the process with SIGPIPE.
///
/// A `write(2)` to a socket or pipe whose reader is gone raises SIGPIPE
/// (hiredis writing to a Redis that went away, the exec handler writing the
/// payload to a child that exited). While a guard lives, SIGPIPE is blocked on the calling thread;
/// on destruction a SIGPIPE raised meanwhile is consumed and the old mask is
/// restored, so the failed write surfaces as an EPIPE I/O error instead. A
/// SIGPIPE that was already pending before the guard is left alone.
class sigpipe_guard {
public:
  /// Blocks SIGPIPE on this thread, remembering whether one was pending.
  sigpipe_guard();

  /// Consumes a SIGPIPE raised while blocked and restores the thread's mask.
  ~sigpipe_guard();

  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

} // namespace mailroom
