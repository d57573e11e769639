#pragma once

#include <chrono>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace mailroom::bench {

/// One end-to-end engine run: generator → memory transport → engine (dedupe
/// on, sweeper on) → no-op handler.
struct engine_run_settings {
  std::uint64_t messages = 2000000;    ///< Messages the generator publishes.
  std::uint32_t max_in_flight = 4096;  ///< engine.max_in_flight.
  std::uint32_t workers = 0;           ///< engine.workers; 0 keeps the engine's default.
  std::uint32_t batch_size = 0;        ///< engine.batch_size; 0 keeps the engine's default.
  std::size_t capacity = 65536;        ///< memory transport capacity.
  double duplicate_ratio = 0.05;       ///< Generator duplicates (exercise dedupe).
  std::chrono::milliseconds result_ttl{2000};     ///< dedupe.result_ttl: keeps the store bounded.
  std::chrono::milliseconds in_flight_delay{10};  ///< dedupe.in_flight_delay (see README).
  std::chrono::milliseconds sample_interval{100}; ///< RSS / progress sampling period.
  std::chrono::seconds timeout{600};   ///< Give up (report and exit) after this long.
  bool keep_samples = false;           ///< Put every sample into the report.
  /// When > 0, dedupe goes through a redis_idempotency_store on
  /// 127.0.0.1:redis_port instead of the memory_idempotency_store.
  int redis_port = 0;
};

/// Runs the engine once in this process and returns the report: wall time,
/// msgs/s, latency percentiles, peak RSS, the engine's counters, the RSS
/// profile over the run and the count check (`"check": "ok"` or the reason).
///
/// Peak RSS is this process's peak: run it in a child process of its own.
/// When the run exceeds `timeout`, it prints a `"check": "TIMEOUT …"` report
/// on stdout and ends the process at once (`_Exit(1)`): a stuck engine might
/// not stop either.
nlohmann::json run_engine(const engine_run_settings& s);

} // namespace mailroom::bench
