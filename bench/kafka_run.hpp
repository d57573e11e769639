#pragma once

// One consumer run of the Kafka benchmark (the raw librdkafka loop or the
// engine), as `mailroom_bench kafka` runs it in a child process: what it
// reads, how it ends, and the report fields both kinds share.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/latency_histogram.hpp"

namespace mailroom::bench {

class options;

/// Settings of one consumer run.
struct kafka_run_settings {
  std::string brokers;             ///< Bootstrap address (required).
  std::string topic;               ///< Topic read (required).
  std::string group;               ///< Consumer group of its own (required).
  int partitions = 4;              ///< Partitions of `topic`.
  /// Throughput runs: records to consume (the topic is pre-filled). Latency
  /// runs: ignored, the run writes rate × (warmup_s + seconds) itself.
  std::uint64_t records = 1000000;
  /// Records per second written while consuming; 0 makes it a throughput
  /// run on a pre-filled topic.
  std::uint64_t rate = 0;
  std::uint64_t seconds = 10;      ///< Measured seconds of a latency run.
  std::uint64_t warmup_s = 1;      ///< First seconds of a latency run, not measured.
  std::size_t record_bytes = 100;  ///< Size of the records a latency run writes.
  /// Engine only: when > 0, dedupe, claims and the attempt log go through
  /// Redis on 127.0.0.1:redis_port; otherwise dedupe and the sweeper are off.
  int redis_port = 0;
  std::chrono::seconds timeout{300}; ///< Give up (report TIMEOUT, exit) after this.
  /// Engine only: transport.kafka.ordering ("per_partition", the default,
  /// "per_key" or "unordered") and buffer_per_partition (0: the default).
  std::string ordering = "per_partition";
  std::size_t buffer_per_partition = 0;

  /// Returns the records the run must see: `records`, or what a latency run
  /// writes.
  std::uint64_t expected() const;
  /// Returns the records of a latency run's warm-up (not measured).
  std::uint64_t warmup_records() const { return rate * warmup_s; }
};

/// Reads the single-run options (--brokers, --topic, --group, --partitions,
/// --records, --rate, --seconds, --warmup-s, --record-bytes, --redis-port,
/// --timeout-s). Throws std::invalid_argument when a required one is missing.
kafka_run_settings kafka_run_settings_from(options& o);

/// Returns the command-line form of `s`, for the child that runs it.
std::vector<std::string> kafka_run_args(const kafka_run_settings& s);

/// The moments of a run, steady clock.
struct kafka_run_times {
  std::chrono::steady_clock::time_point begin; ///< Before the consumer was created.
  std::chrono::steady_clock::time_point first; ///< First record received.
  std::chrono::steady_clock::time_point last;  ///< Every record consumed / acked.
};

/// Returns the fields every run reports: seconds (first record to last),
/// msgs_per_s over them (the headline figure), join_s (creation to the first
/// record: group join, offset lookup, start-up), wall_seconds and
/// wall_msgs_per_s from creation, for `n` records.
nlohmann::json timing_json(const kafka_run_times& t, std::uint64_t n);

/// Returns {"p50_us", "p99_us", "max_us", "count"} of `h`.
nlohmann::json latency_json(const latency_histogram& h);

/// Prints "bench:   <what> <done> / <total> (<s> s)" on stderr when a second
/// passed since `last` (and moves `last`).
void progress_line(const std::string& what, std::uint64_t done, std::uint64_t total,
                   std::chrono::steady_clock::time_point begin,
                   std::chrono::steady_clock::time_point& last);

/// Prints the report `{"check": "TIMEOUT ..."}` plus `fields` on stdout and
/// ends the process at once: a stuck consumer might not close either.
[[noreturn]] void timeout_exit(nlohmann::json fields, const kafka_run_settings& s,
                               std::uint64_t done);

} // namespace mailroom::bench
