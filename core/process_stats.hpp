#pragma once

#include <cstdint>

namespace mailroom {

/// Returns the peak resident set size of this process in bytes.
std::uint64_t peak_rss_bytes();

/// Returns the current resident set size of this process in bytes.
std::uint64_t current_rss_bytes();

/// Returns the CPU time this process used so far (user + system), seconds.
double cpu_seconds();

/// Returns how many file descriptors this process has open (/proc/self/fd).
std::uint64_t open_fds();

} // namespace mailroom
