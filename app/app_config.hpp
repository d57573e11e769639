#pragma once

/// The configuration model of the `mailroom` command: everything one TOML
/// file (plus `--set` overrides) can say, with the defaults that apply when a
/// key is absent. `load_config` (app/config_loader.hpp) fills it in and
/// validates it; `run_app` (app/run_app.hpp) wires the engine from it.

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "app/generator_source.hpp"
#include "app/settings_box.hpp"
#include "clients/redis/redis_settings.hpp"
#include "core/engine_config.hpp"

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

/// A settings_box that copies as a value (a configuration is copied whole).
class boxed_settings {
public:
  boxed_settings() = default;
  explicit boxed_settings(std::unique_ptr<settings_box> box) : box_(std::move(box)) {}
  boxed_settings(const boxed_settings& o) : box_(o.box_ ? o.box_->clone() : nullptr) {}
  boxed_settings& operator=(const boxed_settings& o) {
    box_ = o.box_ ? o.box_->clone() : nullptr;
    return *this;
  }
  boxed_settings(boxed_settings&&) = default;
  boxed_settings& operator=(boxed_settings&&) = default;

  /// Returns the box.
  settings_box& operator*() const { return *box_; }
  settings_box* operator->() const { return box_.get(); }
  explicit operator bool() const { return box_ != nullptr; }

private:
  std::unique_ptr<settings_box> box_;
};

/// Transport settings: the `[transport]` section and its sub-tables.
struct transport_settings {
  /// Which transport the engine consumes from: a name of the transport
  /// registry ("memory", "redis", ...). Required in a file; "memory" in a
  /// configuration built in code.
  std::string type = "memory";
  /// The settings of every registered transport, by name: its
  /// `[transport.<name>]` table, defaults where absent.
  std::map<std::string, boxed_settings> by_type;

  /// Returns the settings of transport `name` as an `S`. Throws
  /// std::out_of_range when no such transport is registered.
  template <class S> const S& of(const std::string& name) const {
    return *static_cast<const S*>(by_type.at(name)->data());
  }
};

/// Message-source settings: the `[source]` section.
struct source_settings {
  /// Where messages come from: "generator" (synthetic messages pushed into the
  /// memory transport) or "none" (only what the transport already holds).
  /// Default "generator", or "none" when the transport is one the generator
  /// cannot feed (every transport but memory).
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
  /// (logs and acks), "exec" (runs `command` once per message) or
  /// "exec_batch" (runs `command` once per batch, Lambda style).
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
  /// Most messages in one call of the exec_batch handler. Default 10.
  std::int64_t batch_max = 10;
  /// Longest wait for more messages once an exec_batch batch has its first,
  /// ms. Default 50.
  std::chrono::milliseconds batch_window{50};
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

/// The metrics and health endpoints: the `[http]` section.
struct http_settings {
  /// Address to serve `/metrics`, `/healthz` and `/readyz` on, as
  /// "host:port" (port 0: any free one, logged); empty disables them.
  /// Default "" (off).
  std::string listen;
  /// Longest wait for a store's answer when `/readyz` asks it, ms. Default 500.
  milliseconds probe_timeout{500};
};

/// Everything the `mailroom` command is configured with.
struct app_config {
  /// Engine, retry, dedupe, sweeper and dead-letter settings: the sections
  /// `[engine]`, `[retry]`, `[dedupe]` (with the idempotency store's kind),
  /// `[sweeper]` (with the claim store's kind) and `[dead_letter]`.
  engine_config engine_cfg;
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
  /// Metrics and health endpoints: `[http]`. Default off.
  http_settings http;
  /// Path of the file this configuration was loaded from; empty when it was
  /// built in code. Default empty.
  std::string source_file;

  /// Returns true when an enabled feature keeps its store on Redis: dedupe
  /// with store "redis", or the sweeper with store
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
           (engine_cfg.dedupe.enabled && engine_cfg.dedupe.store == "redis") ||
           (engine_cfg.sweeper.enabled && engine_cfg.sweeper.store == "redis");
  }
};

} // namespace mailroom
