#include "app/run_app.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "app/builtin_handlers.hpp"
#include "app/logging.hpp"
#include "app/run_report.hpp"
#include "core/engine_config_schema.hpp"
#include "mailroom/engine.hpp"
#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"

#ifdef MAILROOM_WITH_REDIS
#include "app/redis_probe.hpp"
#include "stores/redis/redis_claim_store.hpp"
#include "stores/redis/redis_attempt_log.hpp"
#include "stores/redis/redis_idempotency_store.hpp"
#endif

namespace mailroom {

namespace {

handler_fn make_handler(const handler_spec& spec, const app_config& cfg) {
  if (spec.type == "noop") {
    return make_noop_handler();
  }
  if (spec.type == "log") {
    return make_log_handler();
  }
  if (spec.type == "exec") {
    exec_settings s;
    s.command = spec.command;
    s.env = spec.env;
    s.env_clear = spec.env_clear;
    s.scrub_env = cfg.secret_env_names();
    return make_exec_handler(std::move(s));
  }
  return make_demo_handler(spec.latency);
}

// Signals are taken by one thread with sigtimedwait, so no handler runs in
// async-signal context: the first asks the engine to drain, a second exits
// at once.
class signal_watch {
public:
  explicit signal_watch(engine& e) : engine_(e) {
    thread_ = std::thread([this] { run(); });
  }

  ~signal_watch() {
    done_.store(true);
    thread_.join();
  }

  static void block_in_this_thread() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

  bool signalled() const { return count_.load() > 0; }

private:
  void run() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    timespec tick{0, 100 * 1000 * 1000};
    while (!done_.load()) {
      int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig <= 0) {
        continue;
      }
      if (count_.fetch_add(1) == 0) {
        spdlog::warn("received {}: draining (send it again to exit at once)",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
        engine_.request_stop();
      } else {
        static const char msg[] = "mailroom: second signal, exiting now\n";
        [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
        std::_Exit(130);
      }
    }
  }

  engine& engine_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<int> count_{0};
};


// The idempotency and claim stores the configuration asks for, and the
// attempt log: the transport's own, else Redis beside the dedupe store,
// else the engine's in-memory default.
void add_stores(const app_config& cfg, const transport& t, engine_parts& parts) {
  bool dedupe_on_redis = cfg.engine_cfg.dedupe.enabled && cfg.engine_cfg.dedupe.store == "redis";
  bool claims_on_redis = cfg.engine_cfg.sweeper.enabled && cfg.engine_cfg.sweeper.store == "redis";
#ifdef MAILROOM_WITH_REDIS
  if (dedupe_on_redis) {
    auto store = std::make_shared<redis_idempotency_store>(cfg.redis);
    check_redis(store->connection());
    parts.idempotency = std::move(store);
  }
  if (claims_on_redis) {
    // Records are scoped by the source, so a sweeper only recovers what its
    // own transport delivered.
    auto store = std::make_shared<redis_claim_store>(cfg.redis, t.source_id());
    check_redis(store->connection());
    parts.claims = std::move(store);
  }
  if (dedupe_on_redis && !parts.attempts) {
    parts.attempts =
        std::make_shared<redis_attempt_log>(cfg.redis, t.source_id(), attempt_history_ttl);
  }
  if (dedupe_on_redis || claims_on_redis) {
    spdlog::info("mailroom: Redis at {} holds the {}", redis_description(cfg.redis),
                 !claims_on_redis  ? "idempotency store"
                 : dedupe_on_redis ? "idempotency and claim stores"
                                   : "claim store");
  }
#else
  (void)t;
#endif
  if (cfg.engine_cfg.dedupe.enabled && !dedupe_on_redis) {
    parts.idempotency = std::make_shared<memory_idempotency_store>();
  }
  if (cfg.engine_cfg.sweeper.enabled && !claims_on_redis) {
    parts.claims = std::make_shared<memory_claim_store>();
  }
}

} // namespace

int run_app(const app_config& cfg, const transport_registry& registry) {
  configure_logging(cfg.log.level, cfg.log.format);
  signal_watch::block_in_this_thread(); // inherited by every thread started below

  const auto* kind = registry.find(cfg.transport.type);
  if (kind == nullptr) {
    throw std::runtime_error("transport \"" + cfg.transport.type + "\" is not available");
  }
  auto instance = kind->create(*cfg.transport.by_type.at(kind->name), cfg);
  engine_parts parts;
  parts.transport = instance.transport;
  parts.attempts = instance.attempts;
  transport& t = *parts.transport;
  add_stores(cfg, t, parts);
  parts.handlers.set_fallback(make_handler(cfg.default_handler, cfg));
  for (auto& [topic, spec] : cfg.topic_handlers) {
    parts.handlers.add(topic, make_handler(spec, cfg));
  }

  auto engine_cfg = cfg.engine_cfg;
  if (instance.ordering && engine_cfg.engine.ordering == ordering_mode::unordered) {
    engine_cfg.engine.ordering = *instance.ordering;
  }
  spdlog::info(
      "mailroom: {} transport, {} workers, max_in_flight {}, dedupe {}, ordering {}",
      t.name(), engine_cfg.engine.workers, engine_cfg.engine.max_in_flight,
      engine_cfg.dedupe.enabled ? "on" : "off", to_string(engine_cfg.engine.ordering));
  engine e{engine_cfg, std::move(parts)};
  run_report report{cfg.progress.heartbeat, cfg.log.format == "json"};
  e.start();
  auto& source = instance.source;
  if (source) {
    source->start();
  }
  {
    signal_watch signals{e};
    while (!e.wait_for(cfg.progress.interval)) {
      if (cfg.progress.enabled) {
        report.progress(e.metrics());
      }
      if (signals.signalled() && source) {
        source->stop();
      }
    }
  }
  if (source) {
    source->stop();
    source->join();
  }
  run_outcome outcome;
  outcome.exit = e.stop();
  auto m = e.metrics();
  outcome.dlq_depth = t.dead_letter_depth();
  outcome.transport_rows = t.stats_report();
  report.summary(m, outcome);
  const auto& exit = outcome.exit;
  if (!exit.failure.empty()) {
    std::fprintf(stderr, "mailroom: %s\n", exit.failure.c_str());
    return 1;
  }
  return 0;
}

} // namespace mailroom
