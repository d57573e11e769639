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
#include "clients/redis/redis_connection.hpp"
#include "core/process_stats.hpp"
#include "mailroom/engine.hpp"
#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"
#include "stores/redis/redis_claim_store.hpp"
#include "stores/redis/redis_idempotency_store.hpp"
#include "app/generator_source.hpp"
#include "transports/memory/memory_transport.hpp"
#include "transports/redis/redis_streams_transport.hpp"

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

// Outages during a run are the engine's business (dedupe.on_store_error,
// the sweeper's next tick), but a server that does not answer at start is
// far more often a wrong address or password than an outage: say so now
// rather than run on with every message handed back.
void check_redis(redis_connection& connection) {
  auto r = connection.connect();
  if (r) {
    return;
  }
  const auto& s = connection.settings();
  auto where = s.host + ":" + std::to_string(s.port);
  // The connection's texts start with "redis host:port: "; drop the repeat.
  auto why = r.what;
  if (auto prefix = "redis " + where + ": "; why.rfind(prefix, 0) == 0) {
    why.erase(0, prefix.size());
  }
  if (r.failure == failure_class::transient) {
    throw std::runtime_error("cannot reach Redis at " + where + ": " + why);
  }
  throw std::runtime_error("Redis at " + where + " refused the connection: " + why);
}

std::string redis_description(const redis_settings& s) {
  return s.host + ":" + std::to_string(s.port) + " db " + std::to_string(s.db) +
         ", key prefix \"" + s.key_prefix + "\"";
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

} // namespace

int run_app(const app_config& cfg) {
  configure_logging(cfg.log.level, cfg.log.format);
  signal_watch::block_in_this_thread(); // inherited by every thread started below

  engine_parts parts;
  std::shared_ptr<memory_transport> memory;
  std::shared_ptr<redis_streams_transport> streams;
  if (cfg.transport.type == "redis") {
    auto settings = cfg.transport.redis;
    settings.redis = cfg.redis;
    const auto& dl = cfg.engine_cfg.dead_letter;
    settings.dlq_mask =
        payload_mask{dl.mask_fields, dl.mask_regex, dl.mask_with, dl.on_unparsable};
    streams = std::make_shared<redis_streams_transport>(std::move(settings));
    // The transport's connections are its own; a probe on the same settings
    // gives the same clear start-up error as the stores.
    redis_connection probe{cfg.redis};
    check_redis(probe);
    if (auto r = streams->ensure_group(); !r) {
      throw std::runtime_error("cannot create consumer group \"" +
                               streams->settings().group + "\" on stream \"" +
                               streams->settings().stream + "\": " + r.what);
    }
    spdlog::info("mailroom: consuming stream \"{}\" as {} in group \"{}\" at {}",
                 streams->settings().stream, streams->settings().consumer,
                 streams->settings().group, redis_description(cfg.redis));
    parts.transport = streams;
  } else {
    memory = std::make_shared<memory_transport>(cfg.transport.memory);
    parts.transport = memory;
  }
  transport& t = *parts.transport;
  bool dedupe_on_redis = cfg.engine_cfg.dedupe.enabled && cfg.dedupe_store == "redis";
  bool claims_on_redis = cfg.engine_cfg.sweeper.enabled && cfg.sweeper_store == "redis";
  if (dedupe_on_redis) {
    auto store = std::make_shared<redis_idempotency_store>(cfg.redis);
    check_redis(store->connection());
    parts.idempotency = std::move(store);
  } else if (cfg.engine_cfg.dedupe.enabled) {
    parts.idempotency = std::make_shared<memory_idempotency_store>();
  }
  if (claims_on_redis) {
    auto store = std::make_shared<redis_claim_store>(cfg.redis, t.source_id());
    check_redis(store->connection());
    parts.claims = std::move(store);
  } else if (cfg.engine_cfg.sweeper.enabled) {
    parts.claims = std::make_shared<memory_claim_store>();
  }
  if (dedupe_on_redis || claims_on_redis) {
    spdlog::info("mailroom: Redis at {} holds the {}", redis_description(cfg.redis),
                 !claims_on_redis  ? "idempotency store"
                 : dedupe_on_redis ? "idempotency and claim stores"
                                   : "claim store");
  }
  parts.handlers.set_fallback(make_handler(cfg.default_handler, cfg));
  for (auto& [topic, spec] : cfg.topic_handlers) {
    parts.handlers.add(topic, make_handler(spec, cfg));
  }

  std::unique_ptr<generator_source> generator;
  if (memory && cfg.source.type == "generator") {
    generator = std::make_unique<generator_source>(*memory, cfg.source.generator);
  } else if (memory) {
    memory->close_input();
  }

  spdlog::info(
      "mailroom: {} transport, {} workers, max_in_flight {}, dedupe {}, ordering {}",
      t.name(), cfg.engine_cfg.engine.workers, cfg.engine_cfg.engine.max_in_flight,
      cfg.engine_cfg.dedupe.enabled ? "on" : "off",
      cfg.engine_cfg.engine.ordering == ordering_mode::per_key ? "per_key" : "unordered");
  engine e{cfg.engine_cfg, std::move(parts)};
  run_report report{cfg.progress.heartbeat, cfg.log.format == "json"};
  e.start();
  if (generator) {
    generator->start();
  }
  {
    signal_watch signals{e};
    while (!e.wait_for(cfg.progress.interval)) {
      if (cfg.progress.enabled) {
        report.progress(e.metrics());
      }
      if (signals.signalled() && generator) {
        generator->stop();
      }
    }
  }
  if (generator) {
    generator->stop();
    generator->join();
  }
  run_outcome outcome;
  outcome.exit = e.stop();
  auto m = e.metrics();
  outcome.dlq_depth = t.dead_letter_depth();
  if (streams) {
    auto s = streams->stats();
    outcome.transport_rows.emplace_back("rejected by transport",
                                        s.malformed + s.over_delivered);
  }
  report.summary(m, outcome);
  const auto& exit = outcome.exit;
  if (!exit.failure.empty()) {
    std::fprintf(stderr, "mailroom: %s\n", exit.failure.c_str());
    return 1;
  }
  return 0;
}

} // namespace mailroom
