#pragma once

#include <sys/resource.h>

#include <nlohmann/json.hpp>

namespace mailroom::bench {

/// CPU time and context switches of this process (all its threads) so far.
struct cpu_time {
  double user_s = 0;         ///< User time, seconds.
  double sys_s = 0;          ///< System time, seconds.
  long voluntary = 0;        ///< Context switches by blocking (futex waits, sleeps).
  long involuntary = 0;      ///< Context switches by preemption.

  /// Returns the CPU time used so far (getrusage RUSAGE_SELF).
  static cpu_time now() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return {static_cast<double>(u.ru_utime.tv_sec) + static_cast<double>(u.ru_utime.tv_usec) / 1e6,
            static_cast<double>(u.ru_stime.tv_sec) + static_cast<double>(u.ru_stime.tv_usec) / 1e6,
            u.ru_nvcsw, u.ru_nivcsw};
  }
};

/// Describes the CPU spent between `before` and `after` on `messages`
/// messages over `wall_s` seconds: user and system seconds, CPU µs per
/// message (load-independent, unlike msgs/s on a shared machine), cores
/// busy on average, and context switches per message (voluntary: a thread
/// blocked; involuntary: it was preempted, mostly a sign of a busy machine).
inline nlohmann::json cpu_report(const cpu_time& before, const cpu_time& after,
                                 std::uint64_t messages, double wall_s) {
  double user = after.user_s - before.user_s;
  double sys = after.sys_s - before.sys_s;
  double n = messages ? static_cast<double>(messages) : 1.0;
  return {{"user_s", user},
          {"voluntary_switches_per_msg", static_cast<double>(after.voluntary - before.voluntary) / n},
          {"involuntary_switches_per_msg",
           static_cast<double>(after.involuntary - before.involuntary) / n},
          {"sys_s", sys},
          {"us_per_msg", messages ? (user + sys) * 1e6 / static_cast<double>(messages) : 0.0},
          {"cores_busy", wall_s > 0 ? (user + sys) / wall_s : 0.0}};
}

} // namespace mailroom::bench
