// An order service embedding mailroom with durable steps: each order
// reserves stock, charges the card and sends a confirmation, three steps
// whose results are checkpointed. A redelivered order does not reserve or
// charge again; an order that ends in the dead-letter queue has what it did
// undone, newest first (refund, then release the stock).
//
// Orders (60 in all):
// - every 10th: the mail server fails on the first try; the redelivery
//   replays the reservation and the charge and only mails;
// - every 15th: the card is declined, a decision that is final: the order is
//   dead-lettered at once and its stock released;
// - order 7: the mail address is rejected every time: once the retry budget
//   is spent it is dead-lettered, refunded and its stock released.
//
// It prints one line of counts, which the tests check.

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include <mailroom/engine.hpp>

#include <mailroom/memory.hpp>

namespace {

// Stands in for the stock, payment and mail services: counts what each did.
struct services {
  std::atomic<int> reserved{0}, released{0}, charged{0}, refunded{0}, mailed{0};
  std::mutex mutex;
  std::map<std::string, int> mail_tries; // per order

  std::string reserve(int order) {
    ++reserved;
    return "hold-" + std::to_string(order);
  }
  std::string charge(int order) {
    if (order % 15 == 0) {
      throw std::invalid_argument("card declined");
    }
    ++charged;
    return "payment-" + std::to_string(order);
  }
  void mail(int order) {
    int tries = 0;
    {
      std::lock_guard<std::mutex> guard{mutex};
      tries = ++mail_tries[std::to_string(order)];
    }
    if (order == 7) {
      throw std::runtime_error("mail address rejected");
    }
    if (order % 10 == 0 && tries == 1) {
      throw std::runtime_error("mail server unavailable");
    }
    ++mailed;
  }
};

} // namespace

int main() {
  using namespace mailroom;
  auto transport = std::make_shared<memory_transport>();
  for (int i = 1; i <= 60; ++i) {
    envelope m;
    m.id = "order-" + std::to_string(i);
    m.key = m.id;
    m.topic = "orders";
    m.payload = std::to_string(i);
    if (!transport->publish(m)) {
      std::fprintf(stderr, "saga: publish failed\n");
      return 1;
    }
  }
  transport->close_input();

  engine_config cfg;
  cfg.engine.workers = 4;
  cfg.retry.base = std::chrono::milliseconds{1};
  cfg.retry.cap = std::chrono::milliseconds{5};
  cfg.retry.max_attempts = 3;

  services svc;
  engine_parts parts;
  parts.transport = transport;
  auto checkpoints = std::make_shared<memory_checkpoint_store>();
  parts.checkpoints = checkpoints;
  parts.handlers.add_durable("orders", [&](const envelope& m, handler_context& ctx) {
    int order = std::stoi(m.payload);
    ctx.step(
        "reserve", [&] { return svc.reserve(order); },
        [&](const std::string& hold) {
          (void)hold; // the stock service would be told which hold to free
          ++svc.released;
        });
    try {
      ctx.step(
          "charge", [&] { return svc.charge(order); },
          [&](const std::string& payment) {
            (void)payment;
            ++svc.refunded;
          });
    } catch (const std::invalid_argument& declined) {
      // Retrying will not change the bank's mind.
      return outcome::dead_letter(declined.what());
    }
    ctx.step("mail", [&] {
      svc.mail(order);
      return std::string{"sent"};
    });
    return outcome::ok();
  });

  engine e{cfg, std::move(parts)};
  e.start();
  if (!e.wait_for(std::chrono::seconds{30})) {
    std::fprintf(stderr, "saga: engine did not finish\n");
    return 1;
  }
  e.stop();
  auto m = e.metrics();
  std::printf("reserved=%d charged=%d mailed=%d refunded=%d released=%d acked=%llu "
              "dead_lettered=%llu replayed=%llu compensations=%llu\n",
              svc.reserved.load(), svc.charged.load(), svc.mailed.load(),
              svc.refunded.load(), svc.released.load(),
              static_cast<unsigned long long>(m.acked),
              static_cast<unsigned long long>(m.dead_lettered),
              static_cast<unsigned long long>(m.steps_replayed),
              static_cast<unsigned long long>(m.compensations));
  for (const auto& d : transport->dead_letters()) {
    std::printf("dlq %s: %s\n", d.message.id.c_str(), d.record.reason.c_str());
  }
  return 0;
}
