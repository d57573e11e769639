#include "core/retry_policy.hpp"

#include <algorithm>

namespace mailroom {

retry_policy::retry_policy(retry_settings s, std::uint64_t seed)
    : settings_(s), rng_(seed) {}

std::chrono::milliseconds retry_policy::ceiling(std::uint32_t attempt) const {
  // Shift at most 40 times: beyond that the cap wins anyway and the shift
  // would overflow.
  auto shift = std::min<std::uint32_t>(attempt == 0 ? 0 : attempt - 1, 40);
  auto grown = static_cast<long double>(settings_.base.count()) * (1ULL << shift);
  auto capped = std::min<long double>(grown, settings_.cap.count());
  return std::chrono::milliseconds{static_cast<std::int64_t>(capped)};
}

std::chrono::milliseconds retry_policy::delay(std::uint32_t attempt) {
  std::uniform_int_distribution<std::int64_t> dist(0, ceiling(attempt).count());
  return std::chrono::milliseconds{dist(rng_)};
}

} // namespace mailroom
