#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace mailroom {

/// Settings of a retry policy. Every field has its default and unit beside it.
struct retry_settings {
  std::chrono::milliseconds base{100};  ///< First step of the backoff, ms.
  std::chrono::milliseconds cap{30000}; ///< Upper bound of any delay, ms.
  std::uint32_t max_attempts = 5;       ///< Deliveries before dead-lettering.
};

/// Exponential backoff with full jitter, with an attempt budget.
///
/// The delay after attempt `n` (1-based) is uniform in
/// `[0, min(cap, base * 2^(n-1))]`. The same policy wraps the adapters' own
/// I/O retries and the engine's message retries.
class retry_policy {
public:
  /// Creates a policy from `s`, seeding its jitter from `seed`.
  explicit retry_policy(retry_settings s = {},
                        std::uint64_t seed = std::random_device{}());

  /// Returns the upper bound of the delay after attempt `attempt` (1-based).
  std::chrono::milliseconds ceiling(std::uint32_t attempt) const;

  /// Returns a random delay in `[0, ceiling(attempt)]`.
  std::chrono::milliseconds delay(std::uint32_t attempt);

  /// Returns true when a message that failed attempt `attempt` may be retried.
  bool may_retry(std::uint32_t attempt) const { return attempt < settings_.max_attempts; }

  /// Returns the settings this policy was built from.
  const retry_settings& settings() const { return settings_; }

private:
  retry_settings settings_;
  std::mt19937_64 rng_;
};

} // namespace mailroom
