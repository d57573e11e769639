#include "app/engine_assembly.hpp"

#include <stdexcept>

#include <spdlog/spdlog.h>

#include "app/builtin_handlers.hpp"
#include "app/exec_handler.hpp"
#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"

#ifdef MAILROOM_WITH_REDIS
#include "app/redis_probe.hpp"
#include "stores/redis/redis_attempt_log.hpp"
#include "stores/redis/redis_claim_store.hpp"
#include "stores/redis/redis_idempotency_store.hpp"
#endif

namespace mailroom {

namespace {

exec_settings exec_settings_of(const handler_spec& spec, const app_config& cfg) {
  exec_settings s;
  s.command = spec.command;
  s.env = spec.env;
  s.env_clear = spec.env_clear;
  s.scrub_env = cfg.secret_env_names();
  return s;
}

handler_fn make_handler(const handler_spec& spec, const app_config& cfg) {
  if (spec.type == "noop") {
    return make_noop_handler();
  }
  if (spec.type == "log") {
    return make_log_handler();
  }
  if (spec.type == "exec") {
    return make_exec_handler(exec_settings_of(spec, cfg));
  }
  return make_demo_handler(spec.latency);
}

// Registers the handler `spec` describes for `topic`, or as the fallback
// when `topic` is null.
void add_handler(handler_registry& handlers, const std::string* topic, const handler_spec& spec,
                 const app_config& cfg) {
  if (spec.type == "exec_batch") {
    batch_limits limits{static_cast<std::size_t>(spec.batch_max), spec.batch_window};
    auto fn = make_exec_batch_handler(exec_settings_of(spec, cfg));
    topic ? handlers.add_batch(*topic, std::move(fn), limits)
          : handlers.set_batch_fallback(std::move(fn), limits);
    return;
  }
  topic ? handlers.add(*topic, make_handler(spec, cfg))
        : handlers.set_fallback(make_handler(spec, cfg));
}

// The idempotency and claim stores the configuration asks for, and the
// attempt log: the transport's own, else Redis beside the dedupe store,
// else the engine's in-memory default.
void add_stores(const app_config& cfg, const transport& t, engine_parts& parts) {
  bool dedupe_on_redis = cfg.engine_cfg.dedupe.enabled && cfg.engine_cfg.dedupe.store == "redis";
  bool claims_on_redis = cfg.engine_cfg.sweeper.enabled && cfg.engine_cfg.sweeper.store == "redis";
#ifdef MAILROOM_WITH_REDIS
  if (dedupe_on_redis) {
    auto store = std::make_shared<redis_idempotency_store>(
        cfg.redis, cfg.engine_cfg.dedupe.result_ttl);
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

assembled_engine assemble_engine(const app_config& cfg, const transport_registry& registry) {
  const auto* kind = registry.find(cfg.transport.type);
  if (kind == nullptr) {
    throw std::runtime_error("transport \"" + cfg.transport.type + "\" is not available");
  }
  assembled_engine a;
  a.instance = kind->create(*cfg.transport.by_type.at(kind->name), cfg);
  a.parts.transport = a.instance.transport;
  a.parts.attempts = a.instance.attempts;
  add_stores(cfg, *a.parts.transport, a.parts);
  add_handler(a.parts.handlers, nullptr, cfg.default_handler, cfg);
  for (auto& [topic, spec] : cfg.topic_handlers) {
    add_handler(a.parts.handlers, &topic, spec, cfg);
  }
  a.config = cfg.engine_cfg;
  if (a.instance.ordering && a.config.engine.ordering == ordering_mode::unordered) {
    a.config.engine.ordering = *a.instance.ordering;
  }
  return a;
}

} // namespace mailroom
