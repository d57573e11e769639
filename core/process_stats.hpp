#pragma once

#include <cstdint>

namespace mailroom {

/// Returns the peak resident set size of this process in bytes.
std::uint64_t peak_rss_bytes();

/// Returns the current resident set size of this process in bytes.
std::uint64_t current_rss_bytes();

} // namespace mailroom
