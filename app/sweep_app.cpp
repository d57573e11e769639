#include "app/sweep_app.hpp"

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "app/config_loader.hpp"
#include "app/engine_assembly.hpp"
#include "app/recovery_only_transport.hpp"
#include "mailroom/engine.hpp"

namespace mailroom {

namespace {

using namespace std::chrono_literals;

void check_sweepable(const app_config& cfg) {
  const auto& sweeper = cfg.engine_cfg.sweeper;
  if (!sweeper.enabled) {
    throw config_error("sweeper.enabled", "must be true for mailroom sweep");
  }
  if (sweeper.store != "redis") {
    throw config_error("sweeper.store",
                       "mailroom sweep needs the shared store \"redis\" (a new process's "
                       "memory store holds nothing to recover)");
  }
  if (cfg.transport.type == "kafka") {
    throw config_error("transport.type",
                       "kafka settles offsets only through its consumer group; its "
                       "recovery is the in-process sweeper (sweeper.enabled in mailroom run)");
  }
}

// What the recovered messages came to.
struct settled_counts {
  std::uint64_t acked = 0, retried = 0, dead_lettered = 0, deduped = 0, fenced = 0,
                deferred = 0;
  bool complete = true; // everything recovered was settled in time
};

void print_json(const sweep_summary& s, const settled_counts& c) {
  nlohmann::json j;
  j["stale_markers"] = {{"found", s.stale_found},
                        {"recovered", s.stale_recovered},
                        {"transient_errors", s.stale_errors}};
  j["reclaimable_claims"] = {{"found", s.reclaimable_found},
                             {"processed", s.reclaimable_processed},
                             {"transient_errors", s.reclaimable_errors}};
  j["errors"] = s.errors;
  j["settled"] = {{"acked", c.acked},         {"retried", c.retried},
                  {"dead_lettered", c.dead_lettered}, {"deduped", c.deduped},
                  {"fenced", c.fenced},       {"deferred", c.deferred},
                  {"complete", c.complete}};
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void print_text(const sweep_summary& s, const settled_counts& c) {
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf("stale markers       found %llu  recovered %llu  transient errors %llu\n",
              u(s.stale_found), u(s.stale_recovered), u(s.stale_errors));
  std::printf("reclaimable claims  found %llu  processed %llu  transient errors %llu\n",
              u(s.reclaimable_found), u(s.reclaimable_processed), u(s.reclaimable_errors));
  std::printf("settled             acked %llu  retried %llu  dead-lettered %llu  deduped %llu  "
              "fenced %llu  deferred %llu%s\n",
              u(c.acked), u(c.retried), u(c.dead_lettered), u(c.deduped), u(c.fenced),
              u(c.deferred), c.complete ? "" : "  (not all settled in time)");
  for (const auto& e : s.errors) {
    std::printf("error               %s\n", e.c_str());
  }
}

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) {
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

} // namespace

int sweep_app(const app_config& cfg, const transport_registry& registry, bool json) {
  check_sweepable(cfg);
  auto print = [json](const sweep_summary& s, const settled_counts& c) {
    json ? print_json(s, c) : print_text(s, c);
  };
  sweep_summary s;
  settled_counts counts;
  assembled_engine a;
  try {
    a = assemble_engine(cfg, registry);
  } catch (const std::runtime_error& e) {
    // The store (or the transport) does not answer: that is the tick's error.
    s.transient_errors = 1;
    s.errors.push_back(e.what());
    print(s, counts);
    return 1;
  }
  auto source = std::make_shared<recovery_only_transport>(a.parts.transport);
  a.parts.transport = source;
  a.config.sweeper.interval = std::chrono::hours{24}; // one tick: the first, at start
  engine e{a.config, std::move(a.parts)};
  e.start();
  bool ticked = wait_until([&] { return e.metrics().sweeps >= 1; }, 60s);
  if (ticked) {
    s = e.last_sweep();
    // Recovered records go through the poller into the engine; once all are
    // in, the engine may stop as soon as it holds nothing.
    counts.complete = wait_until([&] { return e.metrics().recovered >= s.recovered; }, 30s);
  } else {
    s.transient_errors = 1;
    s.errors.push_back("the sweeper did not run within 60 s");
  }
  source->finish();
  auto limit = a.config.engine.handler_timeout + a.config.engine.drain_timeout + 10s;
  counts.complete = e.wait_for(limit) && counts.complete;
  auto exit = e.stop();
  auto m = e.metrics();
  counts.acked = m.acked;
  counts.retried = m.retried;
  counts.dead_lettered = m.dead_lettered;
  counts.deduped = m.deduped;
  counts.fenced = m.fenced;
  counts.deferred = m.deferred;
  counts.complete = counts.complete && m.in_flight == 0 && exit.abandoned == 0;
  print(s, counts);
  if (!exit.failure.empty()) {
    spdlog::error("mailroom sweep: {}", exit.failure);
    return 1;
  }
  return s.transient_errors > 0 || !counts.complete ? 1 : 0;
}

} // namespace mailroom
