// A small service embedding mailroom: it builds an engine in code over the
// in-memory transport, registers a blocking handler for orders and an
// asynchronous one for e-mails (completed later from a timer thread, as an
// async HTTP or database client would), publishes some messages, and stops
// once everything is settled. The tests run it and check its output.

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <mailroom/engine.hpp>

#include <mailroom/memory.hpp>

namespace {

// Stands in for an asynchronous client: runs each callback on its own thread
// once its delay has passed.
class fake_mail_client {
public:
  fake_mail_client() : thread_([this] { run(); }) {}
  ~fake_mail_client() {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  // "Sends" a mail; `on_sent` runs 20 ms later on the client's thread.
  void send_async(std::string to, std::function<void(bool)> on_sent) {
    std::lock_guard<std::mutex> guard{mutex_};
    auto due = std::chrono::steady_clock::now() + std::chrono::milliseconds{20};
    queue_.emplace(due, [to = std::move(to), on_sent = std::move(on_sent)] {
      on_sent(!to.empty());
    });
    wake_.notify_all();
  }

private:
  void run() {
    std::unique_lock<std::mutex> guard{mutex_};
    while (!done_ || !queue_.empty()) {
      if (queue_.empty()) {
        wake_.wait(guard);
      } else if (queue_.begin()->first > std::chrono::steady_clock::now()) {
        wake_.wait_until(guard, queue_.begin()->first);
      } else {
        auto job = std::move(queue_.begin()->second);
        queue_.erase(queue_.begin());
        guard.unlock();
        job();
        guard.lock();
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> queue_;
  bool done_ = false;
  std::thread thread_;
};

} // namespace

int main() {
  using namespace mailroom;
  auto transport = std::make_shared<memory_transport>();
  // Publishing fails only once the transport is closed: not here.
  auto publish = [&](const envelope& m) {
    if (!transport->publish(m)) {
      std::fprintf(stderr, "embed: publish failed\n");
      std::exit(1);
    }
  };

  // 100 orders, every tenth sent twice (a duplicate key), one malformed;
  // 50 e-mails, handled asynchronously.
  for (int i = 0; i < 100; ++i) {
    envelope m;
    m.id = "order-" + std::to_string(i);
    m.key = m.id;
    m.topic = "orders";
    m.payload = i == 42 ? "not-json" : "{\"order\":" + std::to_string(i) + "}";
    publish(m);
    if (i % 10 == 0) {
      m.id += "-again";
      publish(m);
    }
  }
  for (int i = 0; i < 50; ++i) {
    envelope m;
    m.id = "mail-" + std::to_string(i);
    m.topic = "emails";
    m.payload = "customer" + std::to_string(i) + "@example.com";
    publish(m);
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
  // The handler returns at once; the client's callback decides the outcome
  // later, from the client's thread. Two lanes hold all 50 calls at once.
  fake_mail_client mail;
  std::atomic<int> mailed{0};
  parts.handlers.add_async("emails",
                           [&](const envelope& m, handler_context&, completion done) {
                             mail.send_async(m.payload, [&mailed, done](bool sent) {
                               if (sent) {
                                 mailed.fetch_add(1);
                               }
                               done(sent ? outcome::ok() : outcome::retry("not sent"));
                             });
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
  std::printf("handled=%d mailed=%d acked=%llu deduped=%llu dead_lettered=%llu\n",
              handled.load(), mailed.load(), static_cast<unsigned long long>(m.acked),
              static_cast<unsigned long long>(m.deduped),
              static_cast<unsigned long long>(m.dead_lettered));
  return 0;
}
