#pragma once

// Handlers that take time: how close the engine comes to the concurrency the
// configuration allows (W blocking handlers at once, M asynchronous calls in
// flight), beside a raw baseline doing the same waiting without the engine.

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace mailroom::bench {

class options;

/// One configuration of the handler-latency benchmark.
struct latency_run_settings {
  bool async = false;                   ///< Asynchronous handler (else blocking).
  std::chrono::microseconds latency{0}; ///< Handler latency L; 0 is the no-op.
  std::uint32_t workers = 4;            ///< engine.workers W.
  std::uint32_t max_in_flight = 1024;   ///< engine.max_in_flight M.
  std::uint64_t messages = 10000;       ///< Messages published.
  /// Publishing rate, msgs/s; 0 publishes as fast as the transport takes them
  /// (saturated). A rate below capacity measures the unsaturated latency.
  double rate = 0;
  std::chrono::seconds timeout{120}; ///< Give up after this long.
};

/// Runs one configuration in this process: the engine, and beside it a raw
/// baseline (W threads sleeping L per message from one queue, or one timer
/// thread keeping M completions outstanding). Returns msgs/s of both, the
/// ideal (W/L or M/L), ratios, p50/p99 latency, CPU µs per message and
/// peak RSS.
nlohmann::json run_handler_latency(const latency_run_settings& s);

/// Returns the settings of `mailroom_bench handler-latency-one` from `o`.
latency_run_settings latency_settings_from(options& o);

/// Runs the whole table (blocking 0 / 1 / 10 ms, async 10 / 50 ms at several
/// workers and max_in_flight, and unsaturated runs at half the ideal rate),
/// each in a child process, prints it and writes `<out>/handlers.json`.
/// Returns 0 when every run passed its check.
int run_handler_latency_all(options& o);

} // namespace mailroom::bench
