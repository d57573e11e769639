#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>

#include "core/io_result.hpp"
#include "core/retry_policy.hpp"

namespace mailroom {

/// Settings of an io_retry. The defaults are the ones users of
/// durable-execution SDKs know: full jitter from 100 ms, capped at 2 s,
/// three retries after the first try.
struct io_retry_settings {
  std::chrono::milliseconds base{100}; ///< Ceiling of the first delay, ms.
  std::chrono::milliseconds cap{2000}; ///< Ceiling of every delay, ms.
  std::uint32_t retries = 3;           ///< Tries after the first one.
};

/// The one policy for an adapter's or the engine's own I/O: a call that
/// failed transiently is tried again after a full-jitter delay, at most
/// `retries` more times; a fatal (or poison) failure is returned at once,
/// since trying again cannot heal it.
///
/// Thread-safe: the jitter source is guarded, the call runs unlocked.
class io_retry {
public:
  /// Sleeps for the delay between two tries (replaceable in tests).
  using sleeper = std::function<void(std::chrono::milliseconds)>;

  /// Creates a policy from `s`, seeding its jitter from `seed`; it waits
  /// with `sleep` (default: this thread sleeps).
  explicit io_retry(io_retry_settings s = {}, std::uint64_t seed = std::random_device{}(),
                    sleeper sleep = {});

  /// Runs `call` (returning io_result) until it succeeds, fails for good, or
  /// the retries are spent; `on_failure(result, try)` sees every failed try
  /// (1-based). Returns the last result.
  template <class Call, class OnFailure>
  io_result run(Call&& call, OnFailure&& on_failure) {
    io_result r;
    for (std::uint32_t attempt = 1;; ++attempt) {
      r = call();
      if (r) {
        return r;
      }
      on_failure(r, attempt);
      if (r.failure != failure_class::transient || attempt > settings_.retries) {
        return r;
      }
      wait_after(attempt);
    }
  }

  /// As run(call, on_failure) without an observer.
  template <class Call>
  io_result run(Call&& call) {
    return run(std::forward<Call>(call), [](const io_result&, std::uint32_t) {});
  }

  /// Returns a random delay in [0, min(cap, base * 2^(failure-1))].
  std::chrono::milliseconds delay(std::uint32_t failure);

  /// Waits delay(failure): the pause after the failure-th failed try, for
  /// callers that retry something other than an io_result (a compensation).
  void wait_after(std::uint32_t failure) { sleep_(delay(failure)); }

  /// Returns the settings in use.
  const io_retry_settings& settings() const { return settings_; }

private:
  io_retry_settings settings_;
  std::mutex mutex_; // guards policy_'s jitter source
  retry_policy policy_;
  sleeper sleep_;
};

} // namespace mailroom
