#include "posix/sigpipe_guard.hpp"

#include <cerrno>
#include <ctime>

#include <pthread.h>

namespace mailroom {

namespace {

bool sigpipe_pending() {
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

} // namespace

sigpipe_guard::sigpipe_guard() {
  sigemptyset(&pipe_);
  sigaddset(&pipe_, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  was_pending_ = sigpipe_pending();
}

sigpipe_guard::~sigpipe_guard() {
  if (!was_pending_ && sigpipe_pending()) {
    timespec zero{};
    while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

} // namespace mailroom
