#define BOOST_TEST_MODULE metrics_exposition
#include <boost/test/unit_test.hpp>

#include <string>
#include <thread>
#include <vector>

#include <unistd.h>
#include <sys/wait.h>

#include "app/metrics_exposition.hpp"
#include "core/latency_histogram.hpp"
#include "core/topic_counters.hpp"
#include "tests/support/http_scrape.hpp"

using namespace mailroom;
using mailroom::testing::promtool_check;
using mailroom::testing::series_value;

namespace {

exposition_input sample_input() {
  exposition_input in;
  in.transport = "kafka";
  in.max_in_flight = 1024;
  in.metrics.polled = 1000;
  in.metrics.recovered = 5;
  in.metrics.acked = 900;
  in.metrics.dead_lettered = 7;
  in.metrics.in_flight = 24;
  topic_counts orders{"orders", {}};
  orders.values[static_cast<std::size_t>(topic_counter::received)] = 1000;
  orders.values[static_cast<std::size_t>(topic_counter::acked)] = 880;
  orders.values[static_cast<std::size_t>(topic_counter::dead_lettered)] = 7;
  topic_counts refunds{"re\"funds", {}};
  refunds.values[static_cast<std::size_t>(topic_counter::received)] = 5;
  refunds.values[static_cast<std::size_t>(topic_counter::acked)] = 20;
  in.metrics.topics = {orders, refunds};
  in.metrics.store_errors = 5;
  in.metrics.store_errors_fatal = 2;
  in.metrics.store_errors_transient = 3;
  in.metrics.transport_errors = 4;
  in.metrics.transport_errors_fatal = 1;
  in.metrics.transport_errors_poison = 1;
  in.metrics.transport_errors_transient = 2;
  latency_histogram h;
  for (int i = 0; i < 90; ++i) {
    h.record(800); // 0.8 ms
  }
  for (int i = 0; i < 10; ++i) {
    h.record(2'000'000); // 2 s
  }
  in.metrics.latency.count = h.count();
  in.metrics.latency.sum_us = h.sum();
  h.cumulative(latency_buckets::bounds_us.data(), in.metrics.latency.at_most.data(),
               in.metrics.latency.at_most.size());
  in.transport_gauges.push_back({"kafka_consumer_lag", "Lag", {{"topic", "or\"ders"},
                                                              {"partition", "3"}}, 42});
  in.transport_gauges.push_back({"kafka_consumer_lag", "Lag", {{"topic", "orders"},
                                                              {"partition", "4"}}, 0});
  in.ready = true;
  return in;
}

} // namespace

BOOST_AUTO_TEST_CASE(cumulative_counts_follow_the_bounds) {
  latency_histogram h;
  h.record(10);
  h.record(1000);
  h.record(50'000);
  h.record(5'000'000);
  std::uint64_t bounds[] = {5, 1000, 100'000, 10'000'000};
  std::uint64_t out[4];
  h.cumulative(bounds, out, 4);
  BOOST_TEST(out[0] == 0u);
  BOOST_TEST(out[1] == 1u); // 1000 shares a bucket with 1023: counted above, within 6 %
  BOOST_TEST(out[2] == 3u);
  BOOST_TEST(out[3] == 4u);
  BOOST_TEST(h.sum() == 5'051'010u);
}

BOOST_AUTO_TEST_CASE(counters_gauges_and_histograms_are_written_by_convention) {
  auto text = prometheus_text(sample_input());
  // Counters an operator reads per topic carry `topic`; a topic's label
  // value is escaped, and the totals are their sums.
  const std::string orders = "{transport=\"kafka\",topic=\"orders\"}";
  const std::string refunds = "{transport=\"kafka\",topic=\"re\\\"funds\"}";
  BOOST_TEST(series_value(text, "mailroom_acked_total" + orders) == 880);
  BOOST_TEST(series_value(text, "mailroom_acked_total" + refunds) == 20);
  BOOST_TEST(series_value(text, "mailroom_received_total" + orders) == 1000);
  BOOST_TEST(series_value(text, "mailroom_received_total" + refunds) == 5);
  BOOST_TEST(series_value(text, "mailroom_dead_lettered_total" + orders) == 7);
  BOOST_TEST(series_value(text, "mailroom_dead_lettered_total" + refunds) == 0);
  BOOST_TEST(series_value(text, "mailroom_acked_total{transport=\"kafka\"}") == -1);
  // The rest keep the transport label only.
  BOOST_TEST(series_value(text, "mailroom_polled_total{transport=\"kafka\"}") == 1000);
  BOOST_TEST(series_value(text, "mailroom_in_flight{transport=\"kafka\"}") == 24);
  BOOST_TEST(series_value(text, "mailroom_credits{transport=\"kafka\"}") == 1000);
  BOOST_TEST(series_value(text, "mailroom_ready{transport=\"kafka\"}") == 1);
  // Errors by failure class, one family each; the classes sum to the total.
  BOOST_TEST(series_value(text, "mailroom_store_errors_total{transport=\"kafka\",class=\"transient\"}") == 3);
  BOOST_TEST(series_value(text, "mailroom_store_errors_total{transport=\"kafka\",class=\"fatal\"}") == 2);
  BOOST_TEST(series_value(text, "mailroom_transport_errors_total{transport=\"kafka\",class=\"transient\"}") == 2);
  BOOST_TEST(series_value(text, "mailroom_transport_errors_total{transport=\"kafka\",class=\"poison\"}") == 1);
  BOOST_TEST(text.find("mailroom_store_errors_fatal") == std::string::npos);
  BOOST_TEST(text.find("# TYPE mailroom_transport_errors_total counter") != std::string::npos);
  const std::string h = "mailroom_message_latency_seconds";
  BOOST_TEST(series_value(text, h + "_bucket{transport=\"kafka\",le=\"0.001\"}") == 90);
  BOOST_TEST(series_value(text, h + "_bucket{transport=\"kafka\",le=\"1\"}") == 90);
  BOOST_TEST(series_value(text, h + "_bucket{transport=\"kafka\",le=\"5\"}") == 100);
  BOOST_TEST(series_value(text, h + "_bucket{transport=\"kafka\",le=\"+Inf\"}") == 100);
  BOOST_TEST(series_value(text, h + "_count{transport=\"kafka\"}") == 100);
  BOOST_TEST(series_value(text, h + "_sum{transport=\"kafka\"}") == 20.072);
  BOOST_TEST(text.find("# TYPE " + h + " histogram\n") != std::string::npos);
  BOOST_TEST(text.find("# TYPE mailroom_acked_total counter\n") != std::string::npos);
  // A label value is escaped; one HELP and TYPE per family.
  BOOST_TEST(text.find("mailroom_kafka_consumer_lag{transport=\"kafka\",topic=\"or\\\"ders\","
                       "partition=\"3\"} 42\n") != std::string::npos);
  auto first = text.find("# TYPE mailroom_kafka_consumer_lag gauge");
  BOOST_TEST(text.find("# TYPE mailroom_kafka_consumer_lag gauge", first + 1) ==
             std::string::npos);
  BOOST_TEST(series_value(text, "process_open_fds") > 0);
  BOOST_TEST(series_value(text, "process_resident_memory_bytes") > 0);
}

BOOST_AUTO_TEST_CASE(promtool_finds_nothing_to_complain_about) {
  std::string said;
  int rc = promtool_check(prometheus_text(sample_input()), said);
  BOOST_TEST(rc == 0, "promtool: " << said);
  BOOST_TEST(said.empty(), said);
  // And it does complain about a broken text: the check can fail.
  BOOST_TEST(promtool_check("mailroom_x_total{a=\"b\" 1\n", said) != 0);
}

BOOST_AUTO_TEST_CASE(label_values_are_escaped) {
  BOOST_TEST(escaped_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
}

BOOST_AUTO_TEST_CASE(topics_past_the_capacity_share_one_overflow_series) {
  topic_counters counters;
  for (std::size_t i = 0; i < topic_counters::capacity + 10; ++i) {
    counters.add("t-" + std::to_string(i), topic_counter::acked, 1);
  }
  counters.add("t-0", topic_counter::acked, 1); // an early one keeps its slot
  auto snap = counters.snapshot();
  BOOST_REQUIRE(snap.size() == topic_counters::capacity + 1);
  BOOST_TEST(snap.front().topic == "t-0");
  BOOST_TEST(snap.front()[topic_counter::acked] == 2u);
  BOOST_TEST(snap.back().topic == std::string{topic_counters::overflow_topic});
  BOOST_TEST(snap.back()[topic_counter::acked] == 10u);
}

BOOST_AUTO_TEST_CASE(a_tally_adds_per_topic_at_its_flush_and_can_discard_a_counter) {
  topic_counters counters;
  topic_tally tally{&counters};
  tally.add("a", topic_counter::acked);
  tally.add("b", topic_counter::acked);
  tally.add("a", topic_counter::deduped);
  tally.add("a", topic_counter::acked, 2);
  BOOST_TEST(counters.snapshot().size() == 2u); // slots taken, nothing added yet
  BOOST_TEST(counters.snapshot()[0][topic_counter::acked] == 0u);
  tally.discard(topic_counter::deduped);
  tally.flush();
  auto snap = counters.snapshot();
  BOOST_TEST(snap[0].topic == "a");
  BOOST_TEST(snap[0][topic_counter::acked] == 3u);
  BOOST_TEST(snap[0][topic_counter::deduped] == 0u);
  BOOST_TEST(snap[1][topic_counter::acked] == 1u);
  tally.flush(); // nothing twice
  BOOST_TEST(counters.snapshot()[0][topic_counter::acked] == 3u);
}

BOOST_AUTO_TEST_CASE(topics_counted_from_many_threads_lose_nothing) {
  topic_counters counters;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&counters] {
      for (int i = 0; i < 20000; ++i) {
        counters.add("t-" + std::to_string(i % 8), topic_counter::received);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  auto snap = counters.snapshot();
  BOOST_REQUIRE(snap.size() == 8u);
  for (const auto& t : snap) {
    BOOST_TEST(t[topic_counter::received] == 10000u, t.topic);
  }
}
