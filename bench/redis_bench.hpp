#pragma once

// The Redis benchmark (issue 3): the Redis adapters beside what Redis itself
// does on the same server, in the same run. See bench/README.md, "Redis".

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace mailroom::bench {

class options;

/// Settings of the single Redis runs (each in a child process of its own).
struct redis_run_settings {
  int port = 0;                 ///< redis-server port on 127.0.0.1 (required).
  std::uint64_t messages = 200000; ///< Keys claimed (a) or stream entries (b).
  std::uint32_t batch = 256;    ///< Keys per claim call (a); COUNT of the raw loop is 100.
  std::uint32_t max_in_flight = 1024; ///< engine.max_in_flight for the stream engine run.
  std::string name;             ///< Stream / key-prefix name, unique per run.
  std::chrono::seconds timeout{120}; ///< Give up after this long.
  /// (d) engine run only: dedupe, the sweeper's dispatch records and the
  /// attempt log on this Redis (as config/redis-streams.toml runs), not off.
  bool redis_dedupe = false;
};

/// (a) redis_idempotency_store::claim over `messages` fresh keys in batches
/// of `batch`: claims/s, per-call latency p50/p99, peak RSS.
nlohmann::json run_redis_claims(const redis_run_settings& s);

/// (b, raw) Pre-fills a stream with `messages` entries, then reads it with a
/// bare hiredis loop: XREADGROUP COUNT 100 pipelined with the XACK of the
/// previous batch, one round trip per batch. msgs/s, per-batch p50/p99.
nlohmann::json run_redis_raw_stream(const redis_run_settings& s);

/// (b, engine) Pre-fills an identical stream, then runs the engine (noop
/// handler, dedupe off) on redis_streams_transport until every entry is
/// acked. msgs/s, engine p50/p99, peak RSS.
nlohmann::json run_redis_engine_stream(const redis_run_settings& s);

/// `mailroom_bench redis`: starts a redis-server, runs (a), (b) and (c) each
/// in a child process, runs redis-benchmark, prints the table and writes
/// <out>/redis.json. Returns the exit status.
int run_redis_all(options& o);

} // namespace mailroom::bench
