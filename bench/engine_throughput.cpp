#include "engine_throughput.hpp"

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <unistd.h>

#include <mailroom/engine.hpp>

#include "app/builtin_handlers.hpp"
#include "core/process_stats.hpp"
#include "cpu_time.hpp"
#include "rss_sampler.hpp"
#include "stores/redis/redis_idempotency_store.hpp"
#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"
#include "app/generator_source.hpp"
#include "transports/memory/memory_transport.hpp"

namespace mailroom::bench {

nlohmann::json run_engine(const engine_run_settings& s) {
  using clock = std::chrono::steady_clock;

  memory_transport_settings ts;
  ts.capacity = s.capacity;
  auto transport = std::make_shared<memory_transport>(ts);

  generator_settings gs;
  gs.messages = s.messages;
  gs.duplicate_ratio = s.duplicate_ratio;
  gs.poison_ratio = 0;
  gs.flaky_ratio = 0;
  generator_source generator{*transport, gs};

  engine_parts parts;
  parts.transport = transport;
  std::shared_ptr<redis_idempotency_store> redis_store;
  if (s.redis_port > 0) {
    redis_settings rs;
    rs.port = s.redis_port;
    rs.key_prefix = "bench:" + std::to_string(::getpid()) + ":";
    redis_store = std::make_shared<redis_idempotency_store>(rs, s.result_ttl);
    parts.idempotency = redis_store;
  } else {
    parts.idempotency = std::make_shared<memory_idempotency_store>();
  }
  parts.claims = std::make_shared<memory_claim_store>();
  parts.handlers.set_fallback(make_noop_handler());

  engine_config cfg;
  cfg.engine.max_in_flight = s.max_in_flight;
  if (s.workers > 0) {
    cfg.engine.workers = s.workers;
  }
  if (s.batch_size > 0) {
    cfg.engine.batch_size = s.batch_size;
  }
  cfg.dedupe.enabled = true;
  cfg.dedupe.result_ttl = s.result_ttl;
  cfg.dedupe.in_flight_delay = s.in_flight_delay;
  const auto workers = cfg.engine.workers;
  const auto batch_size = cfg.engine.batch_size;

  engine e{cfg, std::move(parts)};
  rss_sampler sampler{s.sample_interval, [&e] {
                        auto m = e.metrics();
                        return std::make_pair(m.acked + m.dead_lettered, m.in_flight);
                      }};

  auto cpu0 = cpu_time::now();
  auto t0 = clock::now();
  e.start();
  generator.start();
  while (!e.wait_for(std::chrono::milliseconds{50})) {
    if (clock::now() - t0 > s.timeout) {
      // A stuck engine may not stop either: report what it did and leave
      // without tearing anything down.
      auto m = e.metrics();
      nlohmann::json r = {{"kind", "engine"},
                          {"messages", s.messages},
                          {"max_in_flight", s.max_in_flight},
                          {"seconds", std::chrono::duration<double>(clock::now() - t0).count()},
                          {"msgs_per_s", 0.0},
                          {"check", "TIMEOUT after " + std::to_string(s.timeout.count()) +
                                        " s: " + std::to_string(m.acked + m.dead_lettered) +
                                        " settled, " + std::to_string(m.in_flight) +
                                        " in flight, generator published " +
                                        std::to_string(generator.published())}};
      std::cout << r.dump() << std::endl;
      std::_Exit(1);
    }
  }
  auto t1 = clock::now();
  auto cpu1 = cpu_time::now();
  generator.join();
  auto exit = e.stop();
  auto samples = sampler.finish();
  auto m = e.metrics();
  auto plan = generator_source::plan(gs);
  auto tstats = transport->stats();

  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  const std::uint64_t finished = m.acked + m.dead_lettered;
  // Two result TTLs: the store's first results have expired and its size
  // follows the rate from then on.
  auto prof = profile_of(samples, s.messages,
                         2 * std::chrono::duration<double>(s.result_ttl).count());

  std::string check = "ok";
  if (finished != s.messages) {
    check = "COUNT MISMATCH: acked " + std::to_string(m.acked) + " + dead-lettered " +
            std::to_string(m.dead_lettered) + " != " + std::to_string(s.messages);
  } else if (m.dead_lettered != 0) {
    check = "UNEXPECTED DEAD LETTERS: " + std::to_string(m.dead_lettered);
  } else if (tstats.acked != s.messages) {
    check = "TRANSPORT ACKED " + std::to_string(tstats.acked) + " != " +
            std::to_string(s.messages);
  } else if (!exit.drained) {
    check = "DRAIN INCOMPLETE";
  }

  nlohmann::json r;
  r["kind"] = "engine";
  r["messages"] = s.messages;
  r["max_in_flight"] = s.max_in_flight;
  r["idempotency_store"] = s.redis_port > 0 ? "redis" : "memory";
  if (redis_store) {
    // Round trips to Redis (claim and complete calls, each one EVALSHA).
    r["redis_round_trips"] = redis_store->connection().round_trips();
  }
  r["workers"] = workers;
  r["batch_size"] = batch_size;
  r["capacity"] = s.capacity;
  r["duplicate_ratio"] = s.duplicate_ratio;
  r["result_ttl_ms"] = s.result_ttl.count();
  r["in_flight_delay_ms"] = s.in_flight_delay.count();
  r["seconds"] = seconds;
  r["msgs_per_s"] = seconds > 0 ? static_cast<double>(finished) / seconds : 0.0;
  // Too short a run has no two samples between 10 % and 90 %: no figure.
  r["steady_msgs_per_s"] =
      prof.steady_msgs_per_s > 0 ? nlohmann::json(prof.steady_msgs_per_s) : nlohmann::json();
  r["p50_us"] = m.p50_us;
  r["p99_us"] = m.p99_us;
  r["max_us"] = m.max_us;
  r["peak_rss_bytes"] = peak_rss_bytes();
  r["check"] = check;
  r["cpu"] = cpu_report(cpu0, cpu1, finished, seconds);
  r["counts"] = {{"polled", m.polled},
                 {"acked", m.acked},
                 {"dead_lettered", m.dead_lettered},
                 {"deduped", m.deduped},
                 {"expected_duplicates", plan.duplicates},
                 {"deferred", m.deferred},
                 {"retried", m.retried},
                 {"fenced", m.fenced},
                 {"handler_errors", m.handler_errors},
                 {"store_errors", m.store_errors},
                 {"recovered", m.recovered},
                 {"restarts", m.restarts},
                 {"in_flight_peak", m.in_flight_peak},
                 {"transport_acked", tstats.acked},
                 {"transport_delivered", tstats.delivered}};
  r["rss"] = {{"at_10pct_bytes", prof.at_10},
              {"at_50pct_bytes", prof.at_50},
              {"at_90pct_bytes", prof.at_90},
              {"max_sampled_bytes", prof.max},
              {"growth_10_to_90", prof.growth_10_90},
              {"growth_50_to_90", prof.growth_50_90},
              {"msgs_per_s_before_10pct", prof.rate_at_10},
              {"msgs_per_s_before_90pct", prof.rate_at_90},
              {"valid", prof.valid},
              {"samples", samples.size()},
              {"sample_interval_ms", s.sample_interval.count()}};
  if (s.keep_samples) {
    auto& out = r["samples"] = nlohmann::json::array();
    for (auto& x : samples) {
      out.push_back({x.t_s, x.done, x.in_flight, x.rss});
    }
  }
  return r;
}

} // namespace mailroom::bench
