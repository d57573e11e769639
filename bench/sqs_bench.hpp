#pragma once

// The SQS benchmark (issue 13): a raw ReceiveMessage(10) + DeleteMessageBatch
// loop on the same client code (`sqs_api`) against the engine with a no-op
// handler over `sqs_transport`, each on an identical pre-filled queue of a
// real SQS-compatible server (ElasticMQ, started by the run), interleaved.

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace mailroom::bench {

class options;

/// Settings of one consumer run (a child process).
struct sqs_run_settings {
  std::string endpoint;  ///< http://127.0.0.1:port (required).
  std::string queue_url; ///< The pre-filled queue (required).
  std::string dlq_url;   ///< Engine only: its dead-letter queue.
  std::uint64_t messages =
      20000; ///< Messages the queue holds; the run ends when all are deleted.
  std::uint32_t receivers =
      4; ///< Concurrent long polls (raw: threads; engine: receivers).
  std::chrono::seconds timeout{300}; ///< Give up after this long.
};

/// `mailroom_bench sqs-raw ...`: receivers threads, each looping ReceiveMessage
/// (10, long poll 1 s) then DeleteMessageBatch of what it got, until every
/// message is deleted. msgs/s, p50/p99 of one receive + delete, CPU, RSS.
nlohmann::json run_sqs_raw(const sqs_run_settings& s);

/// `mailroom_bench sqs-engine ...`: the engine (no-op handler, dedupe and
/// sweeper off) over `sqs_transport` until every message is acked.
nlohmann::json run_sqs_engine(const sqs_run_settings& s);

/// Reads the single-run options (--endpoint, --queue-url, --dlq-url,
/// --messages, --receivers, --timeout-s).
sqs_run_settings sqs_run_settings_from(options& o);

/// `mailroom_bench sqs [--messages 20000] [--receivers 4] [--repeat 3]
/// [--timeout-s 300] [--out DIR]`: starts ElasticMQ, runs both sides
/// `repeat` times interleaved on fresh queues, prints the table (best and
/// median, ratio against the 0.9x target, the server's CPU per message) and
/// writes <out>/sqs.json. Returns the exit code.
int run_sqs_all(options& o);

} // namespace mailroom::bench
