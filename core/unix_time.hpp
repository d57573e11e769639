#pragma once

#include <cstdint>

#include "core/envelope.hpp"

namespace mailroom {

/// Returns the wall-clock time now as Unix milliseconds: what records that
/// outlive the process (DLQ entries, stored retry due times) carry.
std::int64_t unix_ms_now();

/// Converts engine time points to Unix milliseconds and back at the store
/// boundary.
///
/// The engine measures with `mailroom::clock` (steady_clock), whose epoch is
/// private to the machine's boot; Redis outlives processes and is shared by
/// machines, so stored times are wall-clock Unix milliseconds. A bridge
/// samples both clocks once and maps every time point of one call with that
/// one offset, so the times of a batch stay mutually consistent. A stored
/// time read back is exact to the millisecond plus whatever the wall clock
/// was stepped in between.
class unix_time {
public:
  /// Samples both clocks now.
  unix_time();

  /// Returns `t` as Unix milliseconds (rounded down).
  std::int64_t to_unix_ms(clock::time_point t) const;

  /// Returns the engine time point of Unix time `ms`.
  clock::time_point from_unix_ms(std::int64_t ms) const;

private:
  clock::time_point steady_now_;
  std::int64_t unix_now_us_;
};

} // namespace mailroom
