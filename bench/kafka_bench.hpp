#pragma once

// The Kafka benchmark: the engine over kafka_transport beside a plain
// librdkafka consumer on the same broker, in the same run. See
// bench/README.md, "Kafka".

#include <nlohmann/json.hpp>

namespace mailroom::bench {

class options;

/// `mailroom_bench kafka`: starts its own Kafka broker (and redis-server),
/// pre-fills a topic, runs the raw consumer, the engine with dedupe off and
/// the engine with Redis dedupe, each `--repeat` times interleaved and each
/// in a child process of its own, then the three at a fixed produce rate
/// for end-to-end latency; prints the table, writes <out>/kafka.json and
/// <out>/kafka.dat and draws <out>/kafka.png. Returns the exit status: 0,
/// 1 when a run failed its check, 2 when the broker or Redis cannot start.
int run_kafka_all(options& o);

} // namespace mailroom::bench
