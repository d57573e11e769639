#pragma once

// The engine over kafka_transport as the Kafka benchmark runs it: no-op
// handler, per_partition ordering, at-least-once commits; dedupe and the
// sweeper off, or on Redis as `mailroom run` wires dedupe.store = "redis".

#include <nlohmann/json.hpp>

#include "kafka_run.hpp"

namespace mailroom::bench {

/// Runs mailroom::engine (default workers, batch size and max_in_flight)
/// over a kafka_transport reading `s.topic` as group `s.group` until the
/// engine has acked `s.expected()` records, then stops it (drain, final
/// commit, leave the group).
///
/// With `s.redis_port` 0, dedupe and the sweeper are off (the attempt log
/// is the engine's in-memory default); otherwise a redis_idempotency_store,
/// a redis_claim_store and a redis_attempt_log on 127.0.0.1:`s.redis_port`
/// are wired in. With `s.rate` > 0 it waits for the assignment, writes the
/// records itself with a paced_producer, and the handler measures each
/// one's produce-to-handler latency (the warm-up excluded).
///
/// Returns the report: timing_json fields, CPU, peak RSS, the engine's
/// counters and receive-to-settle p50/p99, the transport's, latency
/// (latency runs), and `"check": "ok"` when acked = records with nothing
/// dead-lettered, the drain completed and the committed offsets reached
/// the end of every partition.
nlohmann::json run_kafka_engine(const kafka_run_settings& s);

} // namespace mailroom::bench
