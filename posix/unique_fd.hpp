#pragma once

#include <utility>

#include <unistd.h>

namespace mailroom::posix {

/// Owns one file descriptor and closes it; move-only.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  /// Returns the descriptor, or -1.
  int get() const { return fd_; }

  /// Returns true while a descriptor is held.
  bool valid() const { return fd_ >= 0; }

  /// Closes the held descriptor and takes `fd` instead.
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

} // namespace mailroom::posix
