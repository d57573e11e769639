#pragma once

// Test support: an engine over the in-memory transport and stores, with
// settings scaled down so behaviour shows in milliseconds.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "mailroom/engine.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/forwarding_transport.hpp"
#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"
#include "transports/memory/memory_transport.hpp"

namespace mailroom::testing {

using namespace std::chrono_literals;

/// Returns engine settings scaled down so behaviour shows in milliseconds.
inline engine_config scaled_down_config() {
  engine_config cfg;
  cfg.engine.workers = 4;
  cfg.engine.max_in_flight = 256;
  cfg.engine.batch_size = 64;
  cfg.engine.poll_wait = 20ms;
  cfg.engine.handler_timeout = 2000ms;
  cfg.engine.drain_timeout = 2000ms;
  cfg.retry.base = 1ms;
  cfg.retry.cap = 5ms;
  cfg.retry.max_attempts = 3;
  cfg.dedupe.in_flight_delay = 20ms;
  cfg.dedupe.store_error_delay = 20ms;
  cfg.dedupe.claim_ttl = 10000ms;
  cfg.sweeper.interval = 50ms;
  cfg.sweeper.stale_cutoff = 30000ms;
  return cfg;
}

/// Builds, runs and inspects one engine for one test.
struct engine_harness {
  std::shared_ptr<memory_transport> transport;
  std::shared_ptr<memory_idempotency_store> store;
  std::shared_ptr<memory_claim_store> claims;
  engine_config cfg;
  handler_registry handlers;
  std::unique_ptr<engine> eng;
  /// False makes the engine see a transport without leases: nothing renews
  /// the visibility of a slow delivery, so it times out and is redelivered.
  bool renew_leases = true;
  /// When set, the engine sees this transport (a wrapper of `transport`).
  std::shared_ptr<mailroom::transport> seen_transport;
  /// When set, the engine keeps attempt histories here (else its default).
  std::shared_ptr<attempt_log> attempts;
  /// Where durable handlers keep their step results.
  std::shared_ptr<checkpoint_store> checkpoints;

  /// Creates the adapters; `visibility` is the transport's visibility timeout.
  explicit engine_harness(std::chrono::milliseconds visibility = 5000ms,
                          memory_idempotency_store::clock_fn now = {})
      : transport(std::make_shared<memory_transport>(
            memory_transport_settings{visibility, 65536})),
        store(std::make_shared<memory_idempotency_store>(std::move(now))),
        claims(std::make_shared<memory_claim_store>()) {
    cfg = scaled_down_config();
  }

  ~engine_harness() {
    if (eng) {
      eng->stop();
    }
  }

  /// Publishes one message with id, key and payload.
  void publish(const std::string& id, const std::string& key, const std::string& payload,
               const std::string& topic = "orders") {
    envelope m;
    m.id = id;
    m.key = key;
    m.topic = topic;
    m.payload = payload;
    BOOST_REQUIRE(bool(transport->publish(std::move(m))));
  }

  /// Returns the store key the engine claims the idempotency key `key` of
  /// `topic` under (dedupe keys are scoped by topic).
  static std::string store_key(const std::string& key, const std::string& topic = "orders") {
    envelope m;
    m.key = key;
    m.topic = topic;
    return dedupe_key(m, dedupe_scope::topic);
  }

  /// Publishes `n` messages "m-i" with keys "k-i".
  void publish_many(int n, const std::string& topic = "orders") {
    for (int i = 0; i < n; ++i) {
      publish("m-" + std::to_string(i), "k-" + std::to_string(i),
              "{\"n\":" + std::to_string(i) + "}", topic);
    }
  }

  /// Registers an "orders" handler that acks and counts its calls; returns
  /// the counter.
  std::atomic<int>& ack_and_count() {
    handlers.add("orders", [this](const envelope&, handler_context&) {
      calls++;
      return outcome::ok();
    });
    return calls;
  }

  /// Calls of the handler registered by `ack_and_count`.
  std::atomic<int> calls{0};

  /// Starts the engine with the configured handlers.
  void start(bool with_claims = true) {
    engine_parts parts;
    parts.transport = transport;
    if (!renew_leases) {
      parts.transport = std::make_shared<forwarding_transport>(transport, true);
    }
    if (seen_transport) {
      parts.transport = seen_transport;
    }
    parts.attempts = attempts;
    parts.checkpoints = checkpoints;
    parts.idempotency = cfg.dedupe.enabled ? store : nullptr;
    parts.claims = with_claims ? claims : nullptr;
    parts.handlers = handlers;
    eng = std::make_unique<engine>(cfg, std::move(parts));
    eng->start();
  }

  /// Closes the input and waits until the engine stopped by itself.
  bool run_to_end(std::chrono::milliseconds limit = 20000ms) {
    transport->close_input();
    return eng->wait_for(limit);
  }

  /// Publishes one message "m-1" (key "k-1"), starts the engine, lets it
  /// settle everything and returns its final counters.
  metrics_snapshot run_one() {
    publish("m-1", "k-1", "{}");
    start();
    BOOST_REQUIRE(run_to_end());
    return finish();
  }

  /// Stops the engine and returns its final counters.
  metrics_snapshot finish() {
    eng->stop();
    return eng->metrics();
  }
};

} // namespace mailroom::testing
