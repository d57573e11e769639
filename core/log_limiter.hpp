#pragma once

#include <chrono>
#include <cstdint>

#include "core/envelope.hpp"

namespace mailroom {

/// Rate-limits a kind of log line: at most `lines` in each `window`; the rest
/// are counted and reported as one summary line per window, so a burst (a
/// million-message demo with poison in it) does not print a line apiece.
///
/// Not thread-safe: one per actor that logs.
class log_limiter {
public:
  /// Lets `lines` lines through per `window`.
  log_limiter(std::uint32_t lines, std::chrono::milliseconds window)
      : lines_(lines), window_(window) {}

  /// Returns true when one more line may be written at `now`; otherwise
  /// counts it as suppressed.
  bool allow(clock::time_point now) {
    roll(now);
    if (used_ < lines_) {
      ++used_;
      return true;
    }
    ++suppressed_;
    return false;
  }

  /// Returns the lines suppressed so far once their window has ended (and
  /// forgets them), 0 before; `force` returns them at once (at the end).
  std::uint64_t take_suppressed(clock::time_point now, bool force = false) {
    if (suppressed_ == 0 || (!force && now - window_start_ < window_)) {
      return 0;
    }
    auto n = suppressed_;
    suppressed_ = 0;
    return n;
  }

  /// Returns the length of one window.
  std::chrono::milliseconds window() const { return window_; }

private:
  void roll(clock::time_point now) {
    if (now - window_start_ >= window_) {
      window_start_ = now;
      used_ = 0;
    }
  }

  const std::uint32_t lines_;
  const std::chrono::milliseconds window_;
  clock::time_point window_start_{};
  std::uint32_t used_ = 0;
  std::uint64_t suppressed_ = 0;
};

} // namespace mailroom
