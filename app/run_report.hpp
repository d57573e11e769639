#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/envelope.hpp"
#include "core/metrics.hpp"
#include "mailroom/engine.hpp"

namespace mailroom {

/// What the summary says beside the engine's counters.
struct run_outcome {
  engine_exit exit;                        ///< How the engine ended.
  std::optional<std::uint64_t> dlq_depth;  ///< Records the DLQ holds now, if known.
  /// Counts the transport reports of itself, as (row name, value): entries it
  /// dead-lettered without handing them to the engine, and the like.
  std::vector<std::pair<std::string, std::uint64_t>> transport_rows;
};

/// Writes the progress lines of a run (stderr) and its closing summary
/// (stdout): a table of text, or one JSON object per line when the logs are
/// JSON (`log.format = "json"`), so a log pipeline reads them as it reads
/// the logs.
///
/// Every row counts one thing and says which. The settled rows add up:
/// received (polled + recovered by the sweeper) = acked + retried +
/// deferred + dead-lettered + fenced + ack failed + still in flight.
class run_report {
public:
  /// Starts the run's clock. `heartbeat` is the longest time between two
  /// progress lines while nothing changes; `json` selects JSON lines.
  run_report(std::chrono::milliseconds heartbeat, bool json);

  /// Writes one progress line if anything changed since the last one (or the
  /// heartbeat is due): settled so far and its rate, acked, retried,
  /// dead-lettered, deferred, in flight split into running and waiting.
  void progress(const metrics_snapshot& m);

  /// Writes the summary: counts, msgs/s, p50/p99 latency, peak RSS, drain.
  void summary(const metrics_snapshot& m, const run_outcome& outcome);

  /// Returns `n` with thousands separators ("1,234,567").
  static std::string grouped(std::uint64_t n);

private:
  std::chrono::milliseconds heartbeat_;
  bool json_;
  clock::time_point started_;
  clock::time_point last_;
  std::uint64_t last_settled_ = 0;
  std::int64_t last_in_flight_ = -1;
  bool printed_ = false;
};

} // namespace mailroom
