#include "kafka_engine_run.hpp"

#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <mailroom/engine.hpp>

#include "app/builtin_handlers.hpp"
#include "core/process_stats.hpp"
#include "cpu_time.hpp"
#include "kafka_producer.hpp"
#include "kafka_topics.hpp"
#include "stores/redis/redis_attempt_log.hpp"
#include "stores/redis/redis_claim_store.hpp"
#include "stores/redis/redis_idempotency_store.hpp"
#include "transports/kafka/kafka_transport.hpp"

namespace mailroom::bench {
namespace {

using nlohmann::json;
using steady = std::chrono::steady_clock;

// Produce-to-handler latencies from every lane.
struct shared_latency {
  std::mutex mutex;
  latency_histogram histogram;
  std::uint64_t unstamped = 0;
};

handler_fn latency_handler(std::shared_ptr<shared_latency> into, std::uint64_t warm) {
  return [into = std::move(into), warm](const envelope& msg, handler_context&) {
    auto stamp = read_stamp(msg.payload);
    auto us = (steady_ns() - stamp.sent_ns) / 1000;
    std::lock_guard<std::mutex> guard{into->mutex};
    if (!stamp.valid) {
      ++into->unstamped;
    } else if (stamp.seq >= warm) {
      into->histogram.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, us)));
    }
    return outcome::ok();
  };
}

template <class Store> void connect_or_throw(Store& store, const char* what) {
  if (auto r = store.connection().connect(); !r) {
    throw std::runtime_error(std::string{"cannot connect the "} + what + " to Redis: " + r.what);
  }
}

} // namespace

json run_kafka_engine(const kafka_run_settings& s) {
  const std::uint64_t n = s.expected();
  const std::uint64_t warm = s.rate > 0 ? s.warmup_records() : 0;
  const bool redis = s.redis_port > 0;
  const std::string what = std::string{s.rate > 0 ? "engine latency " : "engine "} + s.group;

  kafka_settings ks;
  ks.brokers = s.brokers;
  ks.group_id = s.group;
  ks.topics = {s.topic};
  ks.client_id = "mailroom-bench-engine";
  ks.ordering = s.ordering == "per_key"     ? ordering_mode::per_key
                : s.ordering == "unordered" ? ordering_mode::unordered
                                            : ordering_mode::per_partition;
  if (s.buffer_per_partition > 0) {
    ks.buffer_per_partition = static_cast<std::uint32_t>(s.buffer_per_partition);
  }

  kafka_run_times times;
  auto cpu0 = cpu_time::now();
  times.begin = steady::now();
  auto transport = std::make_shared<kafka_transport>(ks, std::chrono::seconds{30});

  engine_parts parts;
  parts.transport = transport;
  engine_config cfg;
  // What `mailroom run` does: an unordered engine takes the transport's ordering.
  cfg.engine.ordering = ks.ordering;
  cfg.dedupe.enabled = redis;
  cfg.sweeper.enabled = redis;
  if (redis) {
    redis_settings rs;
    rs.port = s.redis_port;
    rs.key_prefix = "bench:" + s.group + ":";
    auto idem = std::make_shared<redis_idempotency_store>(rs, cfg.dedupe.result_ttl);
    auto claims = std::make_shared<redis_claim_store>(rs, transport->source_id());
    auto attempts =
        std::make_shared<redis_attempt_log>(rs, transport->source_id(), attempt_history_ttl);
    connect_or_throw(*idem, "idempotency store");
    connect_or_throw(*claims, "claim store");
    connect_or_throw(*attempts, "attempt log");
    parts.idempotency = std::move(idem);
    parts.claims = std::move(claims);
    parts.attempts = std::move(attempts);
    cfg.dedupe.store = "redis";
    cfg.sweeper.store = "redis";
  }
  auto latency = std::make_shared<shared_latency>();
  parts.handlers.set_fallback(s.rate > 0 ? latency_handler(latency, warm) : make_noop_handler());
  const auto workers = cfg.engine.workers;
  const auto batch_size = cfg.engine.batch_size;
  const auto max_in_flight = cfg.engine.max_in_flight;
  engine e{cfg, std::move(parts)};
  e.start();

  std::unique_ptr<paced_producer> producer;
  if (s.rate > 0) {
    // Records written before the partitions are ours would wait for the join.
    if (!transport->wait_for_assignment(s.timeout)) {
      timeout_exit({{"kind", "kafka-engine"}, {"group", s.group}, {"phase", "join"}}, s, 0);
    }
    producer = std::make_unique<paced_producer>(s.brokers, s.topic, s.partitions, s.rate, n,
                                                s.record_bytes);
    producer->start();
  }
  bool fetched = false;
  auto last_note = times.begin;
  metrics_snapshot m;
  for (;;) {
    m = e.metrics();
    if (!fetched && (m.polled > 0 || transport->stats().fetched > 0)) {
      fetched = true;
      times.first = steady::now();
    }
    if (m.acked >= n || e.stopped()) {
      break;
    }
    if (steady::now() - times.begin > s.timeout) {
      timeout_exit({{"kind", "kafka-engine"},
                    {"group", s.group},
                    {"polled", m.polled},
                    {"in_flight", m.in_flight},
                    {"retried", m.retried},
                    {"store_errors", m.store_errors}},
                   s, m.acked);
    }
    progress_line(what, m.acked, n, times.begin, last_note);
    std::this_thread::sleep_for(std::chrono::milliseconds{fetched ? 2 : 1});
  }
  times.last = steady::now();
  auto cpu1 = cpu_time::now();
  bool produced = producer ? producer->join() : true;
  json producer_report;
  if (producer) {
    producer_report = {{"sent", producer->sent()},
                       {"failed", producer->failed()},
                       {"max_lag_us", producer->max_lag_us()}};
    producer.reset();
  }
  auto stop_begin = steady::now();
  auto exit = e.stop(); // drains, then closes the transport: final commit, leave
  double stop_s = std::chrono::duration<double>(steady::now() - stop_begin).count();
  m = e.metrics();
  auto st = transport->stats();

  auto committed = committed_offsets(s.brokers, s.group, s.topic, s.partitions);
  auto ends = end_offsets(s.brokers, s.topic, s.partitions);
  std::string check = "ok";
  if (!exit.failure.empty()) {
    check = "ENGINE FAILED: " + exit.failure;
  } else if (m.acked != n) {
    check = "ACKED " + std::to_string(m.acked) + " != " + std::to_string(n);
  } else if (m.dead_lettered != 0) {
    check = "UNEXPECTED DEAD LETTERS: " + std::to_string(m.dead_lettered);
  } else if (st.acked != n) {
    check = "TRANSPORT ACKED " + std::to_string(st.acked) + " != " + std::to_string(n);
  } else if (!exit.drained) {
    check = "DRAIN INCOMPLETE";
  } else if (committed != ends) {
    check = "COMMITTED " + std::to_string(offset_sum(committed)) + " != END " +
            std::to_string(offset_sum(ends));
  } else if (!produced) {
    check = "PRODUCE FAILED";
  } else if (latency->unstamped > 0) {
    check = "UNSTAMPED RECORDS: " + std::to_string(latency->unstamped);
  }

  json r = timing_json(times, n);
  r["kind"] = "kafka-engine";
  r["group"] = s.group;
  r["topic"] = s.topic;
  r["records"] = n;
  r["dedupe"] = redis ? "redis" : "off";
  r["workers"] = workers;
  r["batch_size"] = batch_size;
  r["max_in_flight"] = max_in_flight;
  r["ordering"] = s.ordering;
  r["stop_s"] = stop_s;
  r["p50_us"] = m.p50_us;
  r["p99_us"] = m.p99_us;
  r["max_us"] = m.max_us;
  r["engine_latency_of"] = "engine receive-to-settle per record";
  r["cpu"] = cpu_report(cpu0, cpu1, n, std::chrono::duration<double>(times.last - times.begin).count());
  r["peak_rss_bytes"] = peak_rss_bytes();
  r["counts"] = {{"polled", m.polled},
                 {"acked", m.acked},
                 {"deduped", m.deduped},
                 {"deferred", m.deferred},
                 {"retried", m.retried},
                 {"dead_lettered", m.dead_lettered},
                 {"store_errors", m.store_errors},
                 {"in_flight_peak", m.in_flight_peak},
                 {"transport_fetched", st.fetched},
                 {"transport_acked", st.acked},
                 {"transport_commits", st.commits},
                 {"transport_commit_errors", st.commit_errors},
                 {"transport_pauses", st.pauses},
                 {"transport_rebalances", st.rebalances}};
  r["committed_sum"] = offset_sum(committed);
  r["end_sum"] = offset_sum(ends);
  if (s.rate > 0) {
    r["rate"] = s.rate;
    r["measured_seconds"] = s.seconds;
    r["warmup_records"] = warm;
    r["latency"] = latency_json(latency->histogram);
    r["latency_of"] = "send stamp in the producer to the handler's call";
    r["producer"] = producer_report;
  }
  r["check"] = check;
  return r;
}

} // namespace mailroom::bench
