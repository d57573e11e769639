#pragma once

/// The configuration model of the `mailroom` command: everything one TOML
/// file (plus `--set` overrides) can say, with the defaults that apply when a
/// key is absent. `load_config` (app/config_loader.hpp) fills it in and
/// validates it; `run_app` (app/run_app.hpp) wires the engine from it.

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "clients/redis/redis_settings.hpp"
#include "core/engine_config.hpp"
#include "app/generator_source.hpp"
#include "transports/memory/memory_transport.hpp"
#include "transports/redis/redis_streams_settings.hpp"

namespace mailroom {

/// Logging settings: the `[log]` section.
struct log_settings {
  /// Lowest level written: trace, debug, info, warn, error, critical or off.
  /// Default "info".
  std::string level = "info";
  /// Line format: "text" (human-readable) or "json" (one object per line).
  /// Default "text".
  std::string format = "text";
};

/// Transport settings: the `[transport]` section and its sub-tables.
struct transport_settings {
  /// Which transport the engine consumes from: "memory" (in-process queue)
  /// or "redis" (a Redis stream read through a consumer group); "kafka" and
  /// "sqs" are reserved. Default "memory".
  std::string type = "memory";
  /// Settings of the in-memory transport: `[transport.memory]`. Defaults are
  /// those of `memory_transport_settings`.
  memory_transport_settings memory;
  /// Settings of the Redis Streams transport: `[transport.redis]`, used only
  /// when `type` is "redis". Defaults are those of `redis_streams_settings`;
  /// its connection settings (`redis`) and `dlq_mask` are not read from the
  /// file: `run_app` fills them from `[redis]` and `[dead_letter]`.
  redis_streams_settings redis;
};

/// Message-source settings: the `[source]` section.
struct source_settings {
  /// Where messages come from: "generator" (synthetic messages pushed into the
  /// memory transport) or "none" (only what the transport already holds).
  /// Default "generator", or "none" when the transport is "redis" (which
  /// the generator cannot feed).
  std::string type = "generator";
  /// Settings of the synthetic generator, read from the flat keys of
  /// `[source]`. Defaults are those of `generator_settings`.
  generator_settings generator;
};

/// One handler as the configuration describes it: `[handler]` or
/// `[handlers.<topic>]`.
struct handler_spec {
  /// Built-in handler kind: "demo" (the generator demo: sleeps `latency`,
  /// dead-letters malformed JSON, retries while the attempt is at most the
  /// payload's `fail_attempts`, acks the rest), "noop" (acks at once), "log"
  /// (logs and acks) or "exec" (runs `command` once per message).
  /// Default "demo".
  std::string type = "demo";
  /// Simulated work per message of the demo handler, in microseconds;
  /// ignored by the other handlers. Default 0.
  std::chrono::microseconds latency{0};
  /// Program and arguments of the exec handler; required and non-empty when
  /// `type` is "exec", ignored otherwise. Default empty.
  std::vector<std::string> command;
  /// Extra environment variables of the exec handler, as (name, value)
  /// pairs; sorted by name when loaded from TOML. Ignored by the other
  /// handlers. Default empty.
  std::vector<std::pair<std::string, std::string>> env;
  /// Whether the exec handler's child starts from an empty environment (only
  /// MAILROOM_* and `env`) instead of mailroom's own. Default false.
  bool env_clear = false;
};

/// Progress-report settings: the `[progress]` section.
struct progress_settings {
  /// Whether a progress line (counters and rates) is written periodically.
  /// Default true.
  bool enabled = true;
  /// Time between two progress lines, in milliseconds. Default 1000.
  milliseconds interval{1000};
  /// Longest time between two progress lines while nothing changes, ms: an
  /// idle consumer prints a heartbeat, not a line every interval. Default
  /// 60000.
  milliseconds heartbeat{60000};
};

/// Everything the `mailroom` command is configured with.
struct app_config {
  /// Engine, retry, dedupe, sweeper and dead-letter settings: the sections
  /// `[engine]`, `[retry]`, `[dedupe]`, `[sweeper]` and `[dead_letter]`.
  engine_config engine_cfg;
  /// Idempotency store behind dedupe: `[dedupe] store`, "memory" (in the
  /// process) or "redis" (shared, on the server of `redis`). Default
  /// "memory".
  std::string dedupe_store = "memory";
  /// Claim store behind the sweeper's dispatch records: `[sweeper] store`,
  /// "memory" or "redis". Default "memory".
  std::string sweeper_store = "memory";
  /// The Redis server of every store that is "redis" and of the "redis"
  /// transport: `[redis]`. Unused while none is. Defaults are those of `redis_settings`;
  /// the reconnect backoff is not configurable and keeps its default.
  redis_settings redis;
  /// Logging: `[log]`. Default level "info", format "text".
  log_settings log;
  /// Transport: `[transport]`. Default the memory transport.
  transport_settings transport;
  /// Message source: `[source]`. Default the generator.
  source_settings source;
  /// Handler of every topic without its own: `[handler]`. Default the demo
  /// handler with no latency.
  handler_spec default_handler;
  /// Handlers by topic: `[handlers.<topic>]`. Default none.
  std::map<std::string, handler_spec> topic_handlers;
  /// Progress reports: `[progress]`. Default on, every 1000 ms.
  progress_settings progress;
  /// Path of the file this configuration was loaded from; empty when it was
  /// built in code. Default empty.
  std::string source_file;

  /// Returns true when an enabled feature keeps its store on Redis: dedupe
  /// with `dedupe_store` "redis", or the sweeper with `sweeper_store`
  /// "redis", or the Redis Streams transport. Only then is `redis` used.
  /// Returns the names of the environment variables this configuration
  /// reads secrets from (`redis.password_env`, ...): they are never passed
  /// on to a handler's child process.
  std::vector<std::string> secret_env_names() const {
    std::vector<std::string> names;
    if (!redis.password_env.empty()) {
      names.push_back(redis.password_env);
    }
    return names;
  }

  bool uses_redis() const {
    return transport.type == "redis" ||
           (engine_cfg.dedupe.enabled && dedupe_store == "redis") ||
           (engine_cfg.sweeper.enabled && sweeper_store == "redis");
  }
};

} // namespace mailroom
