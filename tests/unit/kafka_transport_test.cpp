#define BOOST_TEST_MODULE kafka_transport
#include <boost/test/unit_test.hpp>

// The Kafka transport on its own, against a real broker (KRaft, started once
// for this executable): the transport contract, commits that never pass
// unsettled work, retries that hold back what their mode orders them with,
// and rebalances with both assignors.

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "tests/support/kafka_admin.hpp"
#include "tests/support/transport_contract.hpp"
#include "transports/kafka/kafka_transport.hpp"

using namespace std::chrono_literals;
using namespace mailroom;
using namespace mailroom::testing;
namespace contract = mailroom::testing::transport_contract;

namespace {

kafka_settings settings_for(const std::string& topic, const std::string& group,
                            ordering_mode ordering = ordering_mode::per_partition) {
  kafka_settings s;
  s.brokers = shared_broker().bootstrap();
  s.group_id = group;
  s.topics = {topic};
  s.ordering = ordering;
  s.commit_interval = 50ms;
  s.revoke_timeout = 2000ms;
  s.close_timeout = 5000ms;
  s.properties = {{"session.timeout.ms", "6000"},
                  {"heartbeat.interval.ms", "500"},
                  {"topic.metadata.refresh.interval.ms", "1000"}};
  return s;
}

std::vector<std::string> numbered(int n, const std::string& key = "k") {
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) {
    lines.push_back(key + ":v-" + std::to_string(i));
  }
  return lines;
}

// A revocation listener that records what it was told.
struct recording_listener : revocation_listener {
  std::mutex mutex;
  std::vector<topic_partition> revoked;
  revocation_report revoke(const std::vector<topic_partition>& parts,
                           std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> g{mutex};
    revoked.insert(revoked.end(), parts.begin(), parts.end());
    return {};
  }
};

} // namespace

// ---- the transport contract ----------------------------------------------------

// Kafka keeps no leases: an unsettled delivery stays this consumer's until
// its partition goes; and a record is bytes: nothing is poison at this level
// (the engine counts deliveries and rejects what is over max_deliveries).
struct a_kafka_topic {
  std::chrono::milliseconds lease{0};
  std::string topic = unique_name("contract");
  std::shared_ptr<kafka_transport> kafka = make();
  std::shared_ptr<mailroom::transport> t = kafka;

  std::shared_ptr<kafka_transport> make() {
    create_topic_with_dlq(shared_broker(), topic, 1);
    auto s = settings_for(topic, unique_name("g"));
    s.key_header = "idem";
    auto out = std::make_shared<kafka_transport>(s);
    BOOST_REQUIRE(out->wait_for_assignment(30s));
    return out;
  }
  void produce(const std::string& key, const std::string& payload) {
    mailroom::testing::produce(shared_broker(), topic, {key + ":" + payload}, true,
                               {"idem=" + key});
  }
  bool make_poison() { return false; }
  std::vector<std::string> dlq_reasons() {
    std::vector<std::string> out;
    for (const auto& r : read_topic(shared_broker(), topic + ".dlq")) {
      out.push_back(r.headers.count("mailroom.reason") ? r.headers.at("mailroom.reason")
                                                       : "<no reason header>");
    }
    return out;
  }
};

MAILROOM_TRANSPORT_CONTRACT(a_kafka_topic)

// ---- commits ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_commit_never_passes_an_unsettled_offset) {
  auto topic = unique_name("commits");
  auto group = unique_name("g");
  create_topic_with_dlq(shared_broker(), topic, 1);
  produce(shared_broker(), topic, numbered(5));
  kafka_transport t{settings_for(topic, group)};
  auto got = contract::poll_until(t, 5, 30s);
  BOOST_REQUIRE(got.size() == 5u);
  BOOST_TEST(got[0].handle.offset == 0);
  BOOST_TEST(got[0].id == topic + "/0/0");
  BOOST_TEST(got[0].key == got[0].id); // no key header configured
  BOOST_TEST(got[0].ordering_key == "k");
  // Offsets 1..4 settled, 0 still running: the commit stays at 0.
  std::vector<const envelope*> later{&got[1], &got[2], &got[3], &got[4]};
  BOOST_REQUIRE(static_cast<bool>(t.ack(later)));
  std::this_thread::sleep_for(500ms);
  BOOST_TEST(committed_offsets(shared_broker(), group, topic, 1)[0] == 0);
  // The metrics endpoint's view: all five still lag (offset 0 unsettled).
  auto gauge = [&](const std::string& name) {
    for (const auto& g : t.gauges()) {
      if (g.name == name && g.labels.size() == 2 && g.labels[0].second == topic &&
          g.labels[1].second == "0") {
        return g.value;
      }
    }
    return -1.0;
  };
  BOOST_TEST(gauge("kafka_consumer_lag") == 5);
  BOOST_REQUIRE(static_cast<bool>(t.ack({&got[0]})));
  bool caught_up = false;
  for (int i = 0; i < 100 && !caught_up; ++i) {
    std::this_thread::sleep_for(50ms);
    caught_up = committed_offsets(shared_broker(), group, topic, 1)[0] == 5;
  }
  BOOST_TEST(caught_up);
  BOOST_TEST(gauge("kafka_consumer_lag") == 0);
  BOOST_TEST(gauge("kafka_committed_offset") == 5);
  BOOST_REQUIRE(static_cast<bool>(t.close()));
  BOOST_TEST(committed_offsets(shared_broker(), group, topic, 1)[0] == 5);
  BOOST_TEST(t.stats().commits >= 2u);
}

// ---- retries hold back what their mode orders them with --------------------------------

BOOST_AUTO_TEST_CASE(a_retry_holds_back_its_partition_in_per_partition_mode) {
  auto topic = unique_name("hold-p");
  create_topic_with_dlq(shared_broker(), topic, 1);
  produce(shared_broker(), topic, {"a:first", "b:second", "c:third"});
  kafka_transport t{settings_for(topic, unique_name("g"))};
  auto first = contract::poll_until(t, 1, 30s);
  BOOST_REQUIRE(first.size() == 1u);
  BOOST_REQUIRE(first[0].payload == "first");
  BOOST_REQUIRE(static_cast<bool>(t.nack(first[0], 300ms)));
  // Nothing of the partition until the retry is due; then it comes first
  // (the engine runs a partition's records one after another from there).
  auto meanwhile = contract::poll_for(t, 150ms);
  BOOST_TEST(meanwhile.empty());
  auto again = contract::poll_until(t, 1, 5s);
  BOOST_REQUIRE(again.size() == 1u);
  BOOST_TEST(again[0].payload == "first");
  BOOST_REQUIRE(static_cast<bool>(t.ack({&again[0]})));
  auto rest = contract::poll_until(t, 2, 5s);
  BOOST_REQUIRE(rest.size() == 2u);
  BOOST_TEST(rest[0].payload == "second");
  BOOST_TEST(rest[1].payload == "third");
}

BOOST_AUTO_TEST_CASE(a_retry_holds_back_only_its_key_in_per_key_mode) {
  auto topic = unique_name("hold-k");
  create_topic_with_dlq(shared_broker(), topic, 1);
  produce(shared_broker(), topic, {"A:a1", "B:b1", "A:a2", "B:b2"});
  kafka_transport t{settings_for(topic, unique_name("g"), ordering_mode::per_key)};
  auto first = contract::poll_until(t, 1, 30s);
  BOOST_REQUIRE(first.size() == 1u);
  BOOST_REQUIRE(first[0].payload == "a1");
  BOOST_REQUIRE(static_cast<bool>(t.nack(first[0], 300ms)));
  // Key B goes on; a2 waits behind a1.
  auto others = contract::poll_until(t, 2, 5s);
  BOOST_REQUIRE(others.size() == 2u);
  BOOST_TEST(others[0].payload == "b1");
  BOOST_TEST(others[1].payload == "b2");
  auto again = contract::poll_until(t, 1, 5s);
  BOOST_REQUIRE(again.size() == 1u);
  BOOST_TEST(again[0].payload == "a1");
  BOOST_REQUIRE(static_cast<bool>(t.ack({&again[0], &others[0], &others[1]})));
  auto last = contract::poll_until(t, 1, 5s);
  BOOST_REQUIRE(last.size() == 1u);
  BOOST_TEST(last[0].payload == "a2");
  BOOST_REQUIRE(static_cast<bool>(t.ack({&last[0]})));
  BOOST_REQUIRE(static_cast<bool>(t.close()));
}

// ---- rebalances ------------------------------------------------------------------

namespace {

// Two consumers of one group take a 4-partition topic between them: the
// second joins mid-stream. Every record is acked exactly once across both,
// the first is told what it gives up, and the group's commits reach the end.
void two_consumers_share_a_topic(const std::string& strategy) {
  auto topic = unique_name("rebalance");
  auto group = unique_name("g");
  create_topic_with_dlq(shared_broker(), topic, 4);
  auto s = settings_for(topic, group);
  s.properties.push_back({"partition.assignment.strategy", strategy});
  std::vector<std::string> first_half, second_half;
  for (int i = 0; i < 40; ++i) {
    (i < 20 ? first_half : second_half).push_back("k" + std::to_string(i) + ":" + std::to_string(i));
  }
  produce(shared_broker(), topic, first_half);
  std::mutex mutex;
  std::map<std::string, int> acked;
  auto consume = [&](kafka_transport& t, std::atomic<bool>& stop) {
    while (!stop.load()) {
      envelope_batch got;
      BOOST_REQUIRE(static_cast<bool>(t.poll(50, 50ms, got)));
      std::vector<const envelope*> ptrs;
      for (const auto& m : got) {
        ptrs.push_back(&m);
      }
      std::vector<std::size_t> stale;
      BOOST_REQUIRE(static_cast<bool>(t.ack_checked(ptrs, stale)));
      std::lock_guard<std::mutex> g{mutex};
      for (std::size_t i = 0; i < got.size(); ++i) {
        if (std::find(stale.begin(), stale.end(), i) == stale.end()) {
          ++acked[got[i].payload];
        }
      }
    }
  };
  recording_listener told;
  kafka_transport one{s};
  one.set_revocation_listener(&told);
  std::atomic<bool> stop_one{false}, stop_two{false};
  std::thread a{[&] { consume(one, stop_one); }};
  auto count = [&] {
    std::lock_guard<std::mutex> g{mutex};
    return acked.size();
  };
  for (int i = 0; i < 600 && count() < 20; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  BOOST_REQUIRE(count() == 20u);
  kafka_transport two{s};
  std::thread b{[&] { consume(two, stop_two); }};
  BOOST_REQUIRE(two.wait_for_assignment(60s));
  produce(shared_broker(), topic, second_half);
  for (int i = 0; i < 600 && count() < 40; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  stop_one = stop_two = true;
  a.join();
  b.join();
  BOOST_REQUIRE(static_cast<bool>(one.close()));
  BOOST_REQUIRE(static_cast<bool>(two.close()));
  BOOST_TEST(count() == 40u);
  for (const auto& [payload, n] : acked) {
    BOOST_TEST(n == 1, "record " << payload << " acked " << n << " times");
  }
  {
    std::lock_guard<std::mutex> g{told.mutex};
    BOOST_TEST(!told.revoked.empty()); // the first consumer gave partitions up
    for (const auto& p : told.revoked) {
      // Numbered, so the engine keeps what the next assignment delivers.
      BOOST_TEST(p.assignment != 0u, p.topic << "/" << p.partition);
    }
  }
  BOOST_TEST(one.stats().rebalances >= 2u);
  BOOST_TEST(committed_offsets(shared_broker(), group, topic, 4) ==
             end_offsets(shared_broker(), topic, 4));
}

} // namespace

BOOST_AUTO_TEST_CASE(a_second_consumer_joins_with_the_eager_assignor) {
  two_consumers_share_a_topic("range");
}

BOOST_AUTO_TEST_CASE(a_second_consumer_joins_with_the_cooperative_assignor) {
  two_consumers_share_a_topic("cooperative-sticky");
}

BOOST_AUTO_TEST_CASE(a_settle_after_the_partition_went_is_stale) {
  auto topic = unique_name("stale");
  auto group = unique_name("g");
  create_topic_with_dlq(shared_broker(), topic, 2);
  produce(shared_broker(), topic, {"a:1", "b:2", "c:3", "d:4", "e:5", "f:6"});
  auto s = settings_for(topic, group);
  kafka_transport one{s};
  auto held = contract::poll_until(one, 6, 30s);
  BOOST_REQUIRE(held.size() == 6u);
  // A second consumer takes a partition while the first still holds work.
  kafka_transport two{s};
  std::atomic<bool> stop{false};
  std::thread keep_polling{[&] {
    while (!stop) {
      envelope_batch sink;
      (void)two.poll(10, 50ms, sink);
    }
  }};
  BOOST_REQUIRE(two.wait_for_assignment(60s));
  std::vector<const envelope*> all;
  for (const auto& m : held) {
    all.push_back(&m);
  }
  std::vector<std::size_t> stale;
  BOOST_REQUIRE(static_cast<bool>(one.ack_checked(all, stale)));
  stop = true;
  keep_polling.join();
  BOOST_TEST(!stale.empty());
  BOOST_TEST(one.stats().stale_settles == stale.size());
  // A stale record is not dead-lettered either.
  dead_letter_record rec;
  rec.reason = "late";
  auto r = one.dead_letter(held[stale[0]], rec);
  BOOST_TEST(r.stale);
  BOOST_TEST(read_topic(shared_broker(), topic + ".dlq").empty());
}

// ---- bad input -----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_missing_topic_or_unreachable_brokers_fail_at_start) {
  auto s = settings_for(unique_name("absent"), unique_name("g"));
  try {
    kafka_transport t{s, 5s};
    BOOST_FAIL("a missing topic was accepted");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string{e.what()}.find("does not exist") != std::string::npos, e.what());
  }
  auto topic = unique_name("nodlq");
  create_topic(shared_broker(), topic, 1);
  try {
    kafka_transport t{settings_for(topic, unique_name("g")), 5s};
    BOOST_FAIL("a missing dead-letter topic was accepted");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string{e.what()}.find(topic + ".dlq") != std::string::npos, e.what());
  }
  s.brokers = "127.0.0.1:" + std::to_string(free_port());
  auto started = std::chrono::steady_clock::now();
  try {
    kafka_transport t{s, 1500ms};
    BOOST_FAIL("unreachable brokers were accepted");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string{e.what()}.find("cannot reach") != std::string::npos, e.what());
  }
  BOOST_TEST((std::chrono::steady_clock::now() - started < 10s));
}

BOOST_AUTO_TEST_CASE(null_values_large_records_and_headers_come_through) {
  auto topic = unique_name("shapes");
  create_topic(shared_broker(), topic, 1, {{"max.message.bytes", "4000000"}});
  create_topic(shared_broker(), topic + ".dlq", 1);
  auto s = settings_for(topic, unique_name("g"));
  s.key_header = "idem";
  produce(shared_broker(), topic, {"k:with-header"}, true, {"idem=order-7", "trace=abc"});
  produce_record(shared_broker(), topic, "tombstone", nullptr);
  std::string big(1 << 20, 'x');
  produce_record(shared_broker(), topic, "big", &big);
  kafka_transport t{s};
  auto got = contract::poll_until(t, 3, 30s);
  BOOST_REQUIRE(got.size() == 3u);
  BOOST_TEST(got[0].key == "order-7");
  BOOST_REQUIRE(got[0].headers.size() == 2u);
  BOOST_TEST(got[0].headers[1].first == "trace");
  BOOST_TEST(got[0].headers[1].second == "abc");
  BOOST_TEST(got[1].payload.empty()); // a null value: an empty payload
  BOOST_TEST(got[1].ordering_key == "tombstone");
  BOOST_TEST(got[2].payload.size() == big.size());
  BOOST_TEST(got[2].key == got[2].id); // no idem header: the record's place
  BOOST_TEST(got[2].ordering_key == "big");
  std::vector<const envelope*> all{&got[0], &got[1], &got[2]};
  BOOST_REQUIRE(static_cast<bool>(t.ack(all)));
}
