#define BOOST_TEST_MODULE generator_source
#include <boost/test/unit_test.hpp>

// The demo's synthetic source: what it publishes into the memory transport.

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "app/generator_source.hpp"
#include "transports/memory/memory_transport.hpp"

using namespace std::chrono_literals;
using mailroom::envelope;
using mailroom::envelope_batch;
using mailroom::memory_transport;
using mailroom::memory_transport_settings;

namespace {


std::vector<const envelope*> pointers(const envelope_batch& b) {
  std::vector<const envelope*> out;
  for (const auto& e : b) {
    out.push_back(&e);
  }
  return out;
}

// Returns the milliseconds since `start` (durations are not printable by Boost.Test).
long long ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

memory_transport_settings with_timeout(std::chrono::milliseconds vis,
                                       std::size_t capacity = 65536) {
  memory_transport_settings s;
  s.visibility_timeout = vis;
  s.capacity = capacity;
  return s;
}

// Polls and acks until the transport is exhausted, returning every delivery.
std::vector<envelope> drain(memory_transport& t) {
  std::vector<envelope> seen;
  envelope_batch batch;
  while (!t.exhausted()) {
    batch.clear();
    BOOST_REQUIRE(t.poll(256, 20ms, batch));
    BOOST_REQUIRE(bool(t.ack(pointers(batch))));
    for (auto& e : batch) {
      seen.push_back(std::move(e));
    }
  }
  return seen;
}

} // namespace

BOOST_AUTO_TEST_CASE(generator_publishes_the_planned_mix) {
  mailroom::generator_settings g;
  g.messages = 100000;
  g.topics = {"orders", "payments"};
  memory_transport t{with_timeout(30000ms, 1024)};
  mailroom::generator_source gen{t, g};
  gen.start();
  auto seen = drain(t);
  gen.join();
  BOOST_TEST(gen.finished());
  BOOST_TEST(gen.published() == 100000u);
  BOOST_REQUIRE(seen.size() == 100000u);

  auto got = gen.expected();
  auto planned = mailroom::generator_source::plan(g);
  BOOST_TEST(got.messages == planned.messages);
  BOOST_TEST(got.poison == planned.poison);
  BOOST_TEST(got.flaky == planned.flaky);
  BOOST_TEST(got.duplicates == planned.duplicates);
  // Ratios land near their settings.
  BOOST_TEST(got.poison > 50u);
  BOOST_TEST(got.poison < 160u);
  BOOST_TEST(got.flaky > 850u);
  BOOST_TEST(got.flaky < 1150u);
  BOOST_TEST(got.duplicates > 4500u);
  BOOST_TEST(got.duplicates < 5500u);

  std::uint64_t poison = 0;
  std::uint64_t flaky = 0;
  std::unordered_map<std::string, std::uint64_t> keys;
  std::unordered_set<std::string> ids;
  std::size_t orders = 0;
  for (const auto& e : seen) {
    ids.insert(e.id);
    ++keys[e.key];
    orders += e.topic == "orders" ? 1 : 0;
    BOOST_TEST_REQUIRE(e.payload.size() >= 60u);
    BOOST_TEST_REQUIRE(e.payload.size() <= 80u);
    if (e.payload.back() != '}') {
      ++poison;
    } else if (e.payload.find("\"fail_attempts\":1") != std::string::npos) {
      ++flaky;
    }
  }
  BOOST_TEST(ids.size() == 100000u);
  BOOST_TEST(keys.size() == got.distinct_keys());
  BOOST_TEST(poison == got.poison);
  BOOST_TEST(flaky == got.flaky);
  BOOST_TEST(orders == 50000u);
  BOOST_TEST(seen[0].id == "m-0");
  BOOST_TEST(seen[0].key == "k-0");
  BOOST_TEST(seen[0].payload.rfind("{\"n\":0,\"fail_attempts\":", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(generator_runs_are_deterministic_per_seed) {
  mailroom::generator_settings g;
  g.messages = 50000;
  auto a = mailroom::generator_source::plan(g);
  auto b = mailroom::generator_source::plan(g);
  g.seed = 7;
  auto c = mailroom::generator_source::plan(g);
  BOOST_TEST(a.duplicates == b.duplicates);
  BOOST_TEST(a.poison == b.poison);
  BOOST_TEST(a.duplicates != c.duplicates);
}

BOOST_AUTO_TEST_CASE(generator_stops_early_when_asked) {
  mailroom::generator_settings g;
  g.messages = 10000000;
  memory_transport t{with_timeout(30000ms, 300)};
  mailroom::generator_source gen{t, g};
  gen.start();
  for (int i = 0; i < 200 && gen.published() < 300u; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  BOOST_TEST(gen.published() == 300u); // held back by the capacity
  auto started = std::chrono::steady_clock::now();
  gen.stop();
  gen.join();
  BOOST_TEST(ms_since(started) < 1000);
  BOOST_TEST(gen.finished());
  BOOST_TEST(!t.accepts_input());
  BOOST_TEST(drain(t).size() == 300u);
}
