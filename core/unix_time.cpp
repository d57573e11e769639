#include "core/unix_time.hpp"

#include <chrono>

namespace mailroom {

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// Floor division: a time before the Unix epoch must round down, not toward 0.
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  auto q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

} // namespace

unix_time::unix_time()
    : steady_now_(clock::now()),
      unix_now_us_(std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count()) {}

std::int64_t unix_time::to_unix_ms(clock::time_point t) const {
  auto delta = std::chrono::duration_cast<std::chrono::microseconds>(t - steady_now_);
  return floor_div(unix_now_us_ + delta.count(), 1000);
}

clock::time_point unix_time::from_unix_ms(std::int64_t ms) const {
  auto delta = std::chrono::microseconds{ms * 1000 - unix_now_us_};
  return steady_now_ + std::chrono::duration_cast<clock::duration>(delta);
}

} // namespace mailroom
