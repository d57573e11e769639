#include "core/io_retry.hpp"

#include <thread>

namespace mailroom {

io_retry::io_retry(io_retry_settings s, std::uint64_t seed, sleeper sleep)
    : settings_(s), policy_(retry_settings{s.base, s.cap, s.retries + 1}, seed),
      sleep_(sleep ? std::move(sleep)
                   : sleeper{[](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }}) {}

std::chrono::milliseconds io_retry::delay(std::uint32_t failure) {
  std::lock_guard<std::mutex> guard{mutex_};
  return policy_.delay(failure);
}

} // namespace mailroom
