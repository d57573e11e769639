#pragma once

// The Kafka benchmark's baseline: a plain librdkafka high-level consumer
// loop with no processing, the ceiling the engine over kafka_transport is
// measured against.

#include <nlohmann/json.hpp>

#include "kafka_run.hpp"

namespace mailroom::bench {

/// Consumes `s.topic` as group `s.group` with `rd_kafka_consumer_poll`
/// (enable.auto.commit=false, offsets stored as records are returned, an
/// asynchronous `rd_kafka_commit` of them every 1 s or 10,000 records, a
/// synchronous one at the end) until it has seen `s.expected()` records,
/// then closes. With `s.rate` > 0 it first waits for its assignment, then
/// writes the records itself with a paced_producer and measures each one's
/// produce-to-poll latency (the warm-up excluded).
///
/// Returns the report: timing_json fields, CPU, peak RSS, latency (latency
/// runs), commits, and `"check": "ok"` when every record was seen and the
/// group's committed offsets reached the end of every partition.
nlohmann::json run_kafka_raw(const kafka_run_settings& s);

} // namespace mailroom::bench
