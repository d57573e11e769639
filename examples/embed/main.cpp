// A small service embedding mailroom: it builds an engine in code over the
// in-memory transport, registers lambda handlers, publishes some orders, and
// stops once everything is settled. The tests run it and check its output.

#include <cstdio>
#include <string>

#include <mailroom/engine.hpp>

#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"
#include "transports/memory/memory_transport.hpp"

int main() {
  using namespace mailroom;
  auto transport = std::make_shared<memory_transport>();

  // 100 orders, every tenth sent twice (a duplicate key), one malformed.
  for (int i = 0; i < 100; ++i) {
    envelope m;
    m.id = "order-" + std::to_string(i);
    m.key = m.id;
    m.topic = "orders";
    m.payload = i == 42 ? "not-json" : "{\"order\":" + std::to_string(i) + "}";
    transport->publish(m);
    if (i % 10 == 0) {
      m.id += "-again";
      transport->publish(m);
    }
  }
  transport->close_input();

  engine_config cfg;
  cfg.engine.workers = 2;
  cfg.retry.base = std::chrono::milliseconds{1};
  cfg.retry.max_attempts = 3;

  engine_parts parts;
  parts.transport = transport;
  parts.idempotency = std::make_shared<memory_idempotency_store>();
  parts.claims = std::make_shared<memory_claim_store>();
  std::atomic<int> handled{0};
  parts.handlers.add("orders", [&](const envelope& m, handler_context&) {
    if (m.payload.front() != '{') {
      return outcome::dead_letter("malformed order");
    }
    handled.fetch_add(1);
    return outcome::ok();
  });

  engine e{cfg, std::move(parts)};
  e.start();
  // The engine stops by itself once the closed source is fully settled.
  if (!e.wait_for(std::chrono::seconds{30})) {
    std::fprintf(stderr, "embed: engine did not finish\n");
    return 1;
  }
  e.stop();
  auto m = e.metrics();
  std::printf("handled=%d acked=%llu deduped=%llu dead_lettered=%llu\n", handled.load(),
              static_cast<unsigned long long>(m.acked),
              static_cast<unsigned long long>(m.deduped),
              static_cast<unsigned long long>(m.dead_lettered));
  return 0;
}
