#define BOOST_TEST_MODULE memory_transport
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "app/generator_source.hpp"
#include "tests/support/transport_contract.hpp"
#include "transports/memory/memory_transport.hpp"

using namespace std::chrono_literals;
using mailroom::envelope;
using mailroom::envelope_batch;
using mailroom::memory_transport;
using mailroom::memory_transport_settings;

namespace {

envelope make(const std::string& id, const std::string& payload = "{}") {
  envelope e;
  e.id = id;
  e.key = "k-" + id;
  e.topic = "orders";
  e.payload = payload;
  return e;
}

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


} // namespace

BOOST_AUTO_TEST_CASE(poll_and_ack_move_messages_through_once) {
  memory_transport t;
  for (int i = 0; i < 10; ++i) {
    BOOST_REQUIRE(t.publish(make(std::to_string(i))));
  }
  envelope_batch first;
  BOOST_REQUIRE(t.poll(4, 0ms, first));
  BOOST_TEST(first.size() == 4u);
  std::set<std::uint64_t> seqs;
  for (const auto& e : first) {
    BOOST_TEST(e.attempt == 1u);
    BOOST_TEST(e.handle.generation == 1u);
    seqs.insert(e.handle.seq);
  }
  BOOST_TEST(seqs.size() == 4u);
  BOOST_TEST(first[0].id == "0");
  BOOST_TEST(first[3].id == "3");

  auto s = t.stats();
  BOOST_TEST(s.published == 10u);
  BOOST_TEST(s.ready == 6u);
  BOOST_TEST(s.in_flight == 4u);

  BOOST_REQUIRE(t.ack(pointers(first)));
  s = t.stats();
  BOOST_TEST(s.acked == 4u);
  BOOST_TEST(s.in_flight == 0u);

  envelope_batch rest;
  BOOST_REQUIRE(t.poll(100, 0ms, rest));
  BOOST_TEST(rest.size() == 6u);
  BOOST_TEST(!t.exhausted());
  BOOST_REQUIRE(bool(t.ack(pointers(rest))));
  BOOST_TEST(!t.exhausted()); // input still open
  t.close_input();
  BOOST_TEST(t.exhausted());
  BOOST_TEST(t.stats().acked == 10u);
  BOOST_TEST(t.stats().delivered == 10u);
}

BOOST_AUTO_TEST_CASE(publish_fills_in_missing_id_and_key) {
  memory_transport t;
  envelope bare;
  bare.payload = "x";
  BOOST_REQUIRE(bool(t.publish(bare)));
  envelope_batch b;
  BOOST_REQUIRE(bool(t.poll(1, 0ms, b)));
  BOOST_REQUIRE(b.size() == 1u);
  BOOST_TEST(!b[0].id.empty());
  BOOST_TEST(b[0].key == b[0].id);
}

BOOST_AUTO_TEST_CASE(unsettled_message_reappears_after_visibility_timeout) {
  memory_transport t{with_timeout(50ms)};
  BOOST_REQUIRE(bool(t.publish(make("a"))));
  envelope_batch first;
  BOOST_REQUIRE(bool(t.poll(10, 0ms, first)));
  BOOST_REQUIRE(first.size() == 1u);
  BOOST_TEST(first[0].attempt == 1u);

  envelope_batch none;
  BOOST_REQUIRE(bool(t.poll(10, 0ms, none)));
  BOOST_TEST(none.empty());

  auto started = std::chrono::steady_clock::now();
  envelope_batch second;
  // Wakes on the visibility deadline, not the full wait.
  BOOST_REQUIRE(bool(t.poll(10, 1000ms, second)));
  auto waited = ms_since(started);
  BOOST_REQUIRE(second.size() == 1u);
  BOOST_TEST(second[0].attempt == 2u);
  BOOST_TEST(second[0].handle.seq == first[0].handle.seq);
  BOOST_TEST(second[0].handle.generation == 2u);
  BOOST_TEST(waited < 500);

  envelope_batch third;
  std::this_thread::sleep_for(60ms);
  BOOST_REQUIRE(bool(t.poll(10, 0ms, third)));
  BOOST_REQUIRE(third.size() == 1u);
  BOOST_TEST(third[0].attempt == 3u);
  BOOST_TEST(t.stats().redelivered_by_timeout == 2u);
}

BOOST_AUTO_TEST_CASE(extend_moves_visibility_and_reports_stale_receipts) {
  memory_transport t{with_timeout(100ms)};
  BOOST_TEST(t.lease()->duration.count() == 100);
  BOOST_REQUIRE(bool(t.publish(make("a"))));
  BOOST_REQUIRE(bool(t.publish(make("b"))));
  BOOST_REQUIRE(bool(t.publish(make("c"))));
  envelope_batch got;
  BOOST_REQUIRE(bool(t.poll(3, 0ms, got)));
  BOOST_REQUIRE(got.size() == 3u);
  BOOST_REQUIRE(bool(t.ack(pointers({got[2]}))));
  // "a" is extended, "b" is not, "c" is settled (so stale).
  std::vector<const mailroom::receipt*> receipts{&got[0].handle, &got[2].handle};
  std::vector<std::size_t> lost;
  BOOST_REQUIRE(bool(t.extend(receipts, mailroom::clock::now() + 400ms, lost)));
  BOOST_TEST((lost == std::vector<std::size_t>{1}));
  BOOST_TEST(t.stats().extended == 1u);
  // After the original timeout only "b" comes back.
  envelope_batch again;
  BOOST_REQUIRE(bool(t.poll(3, 250ms, again)));
  BOOST_REQUIRE(again.size() == 1u);
  BOOST_TEST(again[0].id == got[1].id);
  BOOST_TEST(t.stats().in_flight == 2u);
  BOOST_REQUIRE(bool(t.ack(pointers(again))));
  // "a" comes back once its extended deadline passes.
  envelope_batch later;
  BOOST_REQUIRE(bool(t.poll(3, 1000ms, later)));
  BOOST_REQUIRE(later.size() == 1u);
  BOOST_TEST(later[0].id == got[0].id);
  BOOST_TEST(later[0].attempt == 2u);
}

BOOST_AUTO_TEST_CASE(stale_receipts_are_ignored) {
  memory_transport t{with_timeout(30ms)};
  BOOST_REQUIRE(bool(t.publish(make("a"))));
  envelope_batch old_delivery;
  BOOST_REQUIRE(bool(t.poll(1, 0ms, old_delivery)));
  envelope_batch new_delivery;
  BOOST_REQUIRE(bool(t.poll(1, 500ms, new_delivery)));
  BOOST_REQUIRE(new_delivery.size() == 1u);

  // Every settle with the first delivery's receipt is a no-op.
  BOOST_TEST(bool(t.ack(pointers(old_delivery))));
  auto nacked = t.nack(old_delivery[0], 0ms);
  BOOST_TEST(bool(nacked));
  BOOST_TEST(nacked.stale);
  auto parked = t.dead_letter(old_delivery[0], {});
  BOOST_TEST(bool(parked));
  BOOST_TEST(parked.stale);
  auto s = t.stats();
  BOOST_TEST(s.stale_settles == 3u);
  BOOST_TEST(s.acked == 0u);
  BOOST_TEST(s.nacked == 0u);
  BOOST_TEST(s.dead_lettered == 0u);
  BOOST_TEST(s.in_flight == 1u);
  BOOST_TEST(t.dead_letters().empty());

  auto acked = t.ack(pointers(new_delivery));
  BOOST_TEST(bool(acked));
  BOOST_TEST(!acked.stale);
  BOOST_TEST(t.stats().acked == 1u);
  BOOST_TEST(t.stats().in_flight == 0u);

  // A second ack of the same delivery is stale too.
  BOOST_REQUIRE(bool(t.ack(pointers(new_delivery))));
  BOOST_TEST(t.stats().acked == 1u);
  BOOST_TEST(t.stats().stale_settles == 4u);
}

BOOST_AUTO_TEST_CASE(nack_with_delay_hides_the_message_until_the_delay_passes) {
  memory_transport t;
  BOOST_REQUIRE(bool(t.publish(make("a"))));
  envelope_batch b;
  BOOST_REQUIRE(bool(t.poll(1, 0ms, b)));
  BOOST_REQUIRE(b.size() == 1u);
  auto nacked_at = std::chrono::steady_clock::now();
  BOOST_REQUIRE(bool(t.nack(b[0], 100ms)));
  BOOST_TEST(t.stats().delayed == 1u);
  BOOST_TEST(t.stats().nacked == 1u);

  envelope_batch early;
  BOOST_REQUIRE(bool(t.poll(1, 20ms, early)));
  BOOST_TEST(early.empty());

  envelope_batch later;
  BOOST_REQUIRE(bool(t.poll(1, 1000ms, later)));
  auto elapsed = ms_since(nacked_at);
  BOOST_REQUIRE(later.size() == 1u);
  BOOST_TEST(later[0].attempt == 2u);
  BOOST_TEST(elapsed >= 100);
  BOOST_TEST(elapsed < 600);
  BOOST_TEST(t.stats().delayed == 0u);
}

BOOST_AUTO_TEST_CASE(delayed_messages_come_back_in_due_order) {
  memory_transport t;
  for (const char* id : {"a", "b", "c"}) {
    BOOST_REQUIRE(bool(t.publish(make(id))));
  }
  envelope_batch b;
  BOOST_REQUIRE(bool(t.poll(3, 0ms, b)));
  BOOST_REQUIRE(bool(t.nack(b[0], 90ms)));
  BOOST_REQUIRE(bool(t.nack(b[1], 30ms)));
  BOOST_REQUIRE(bool(t.nack(b[2], 60ms)));
  std::vector<std::string> order;
  while (order.size() < 3) {
    envelope_batch got;
    BOOST_REQUIRE(bool(t.poll(3, 500ms, got)));
    for (const auto& e : got) {
      order.push_back(e.id);
    }
  }
  BOOST_TEST(order == (std::vector<std::string>{"b", "c", "a"}));
}

BOOST_AUTO_TEST_CASE(nack_without_delay_wakes_a_waiting_poller) {
  memory_transport t;
  BOOST_REQUIRE(bool(t.publish(make("a"))));
  envelope_batch b;
  BOOST_REQUIRE(bool(t.poll(1, 0ms, b)));
  std::atomic<std::size_t> got{0};
  auto started = std::chrono::steady_clock::now();
  std::thread poller([&] {
    envelope_batch again;
    BOOST_REQUIRE(bool(t.poll(1, 5000ms, again)));
    got = again.size();
  });
  std::this_thread::sleep_for(30ms);
  BOOST_REQUIRE(bool(t.nack(b[0], 0ms)));
  poller.join();
  BOOST_TEST(got.load() == 1u);
  BOOST_TEST(ms_since(started) < 2000);
}

BOOST_AUTO_TEST_CASE(publish_wakes_a_waiting_poller) {
  memory_transport t;
  std::atomic<std::size_t> got{0};
  std::thread poller([&] {
    envelope_batch b;
    BOOST_REQUIRE(bool(t.poll(10, 5000ms, b)));
    got = b.size();
  });
  std::this_thread::sleep_for(30ms);
  auto started = std::chrono::steady_clock::now();
  BOOST_REQUIRE(bool(t.publish(make("a"))));
  poller.join();
  BOOST_TEST(got.load() == 1u);
  BOOST_TEST(ms_since(started) < 2000);
}

BOOST_AUTO_TEST_CASE(nacks_redeliver_and_the_dead_letter_list_keeps_the_record) {
  memory_transport t;
  BOOST_REQUIRE(bool(t.publish(make("a", "payload"))));
  envelope_batch b;
  BOOST_REQUIRE(bool(t.poll(1, 0ms, b)));
  BOOST_REQUIRE(bool(t.nack(b[0], 0ms)));

  envelope_batch b2;
  BOOST_REQUIRE(bool(t.poll(1, 0ms, b2)));
  BOOST_REQUIRE(b2.size() == 1u);
  BOOST_TEST(b2[0].attempt == 2u);
  // The error history is the engine's (its attempt log), not the transport's.
  BOOST_TEST(b2[0].attempt_errors.empty());
  BOOST_REQUIRE(bool(t.nack(b2[0], 0ms)));

  envelope_batch b3;
  BOOST_REQUIRE(bool(t.poll(1, 0ms, b3)));
  BOOST_REQUIRE(b3.size() == 1u);
  BOOST_TEST(b3[0].attempt == 3u);

  mailroom::dead_letter_record rec;
  rec.reason = "too many attempts";
  rec.attempts = b3[0].attempt;
  rec.errors = {"boom 1", "boom 2", "boom 3"};
  rec.payload = "masked";
  BOOST_REQUIRE(t.dead_letter(b3[0], rec));

  auto dlq = t.dead_letters();
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].message.id == "a");
  BOOST_TEST(dlq[0].message.payload == "payload");
  BOOST_TEST(dlq[0].record.reason == "too many attempts");
  BOOST_TEST(dlq[0].record.attempts == 3u);
  BOOST_TEST(dlq[0].record.errors.size() == 3u);
  BOOST_TEST(dlq[0].record.payload == "masked");

  auto s = t.stats();
  BOOST_TEST(s.dead_lettered == 1u);
  BOOST_TEST(s.nacked == 2u);
  BOOST_TEST(s.in_flight == 0u);
  BOOST_TEST(s.ready == 0u);
  t.close_input();
  BOOST_TEST(t.exhausted());
}

BOOST_AUTO_TEST_CASE(payload_bytes_bound_what_the_transport_holds) {
  memory_transport_settings ts;
  ts.capacity_bytes = 3000;
  memory_transport t{ts};
  std::vector<envelope> batch;
  for (int i = 0; i < 5; ++i) {
    auto m = make(std::to_string(i));
    m.payload.assign(1000, 'x');
    batch.push_back(std::move(m));
  }
  // Three 1000-byte payloads fit; the fourth waits for room.
  BOOST_TEST(t.publish_some(batch, 0, 50ms) == 3u);
  envelope_batch got;
  BOOST_REQUIRE(bool(t.poll(1, 0ms, got)));
  BOOST_TEST(t.publish_some(batch, 3, 50ms) == 0u); // in flight still counts
  BOOST_REQUIRE(bool(t.ack(pointers(got))));
  BOOST_TEST(t.publish_some(batch, 3, 50ms) == 1u);
  // One message larger than the whole capacity still goes into an empty one.
  memory_transport tiny{ts};
  std::vector<envelope> big;
  big.push_back(make("big"));
  big[0].payload.assign(10000, 'y');
  BOOST_TEST(tiny.publish_some(big, 0, 50ms) == 1u);
}

BOOST_AUTO_TEST_CASE(publisher_blocks_at_capacity_until_messages_are_settled) {
  memory_transport t{with_timeout(30000ms, 4)};
  std::atomic<bool> done{false};
  std::atomic<bool> published_all{false};
  std::thread producer([&] {
    std::vector<envelope> batch;
    for (int i = 0; i < 10; ++i) {
      batch.push_back(make(std::to_string(i)));
    }
    // Boost.Test assertions are not thread-safe: report through an atomic.
    published_all = bool(t.publish_batch(std::move(batch)));
    done = true;
  });
  for (int i = 0; i < 400 && t.stats().published < 4u; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  std::this_thread::sleep_for(20ms);
  BOOST_TEST(t.stats().published == 4u);
  BOOST_TEST(!done.load());

  // Polling alone frees nothing: in-flight messages still count.
  envelope_batch b;
  BOOST_REQUIRE(bool(t.poll(4, 0ms, b)));
  std::this_thread::sleep_for(20ms);
  BOOST_TEST(t.stats().published == 4u);

  std::vector<const envelope*> two{&b[0], &b[1]};
  BOOST_REQUIRE(bool(t.ack(two)));
  for (int i = 0; i < 100 && t.stats().published < 6u; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  BOOST_TEST(t.stats().published == 6u);
  BOOST_TEST(!done.load());

  std::vector<const envelope*> rest{&b[2], &b[3]};
  BOOST_REQUIRE(bool(t.ack(rest)));
  std::size_t acked = 4;
  while (acked < 10) {
    envelope_batch more;
    BOOST_REQUIRE(bool(t.poll(10, 100ms, more)));
    BOOST_TEST(t.stats().in_flight + t.stats().ready <= 4u);
    BOOST_REQUIRE(bool(t.ack(pointers(more))));
    acked += more.size();
  }
  producer.join();
  BOOST_TEST(done.load());
  BOOST_TEST(published_all.load());
  BOOST_TEST(t.stats().published == 10u);
  BOOST_TEST(t.stats().acked == 10u);
}

BOOST_AUTO_TEST_CASE(publish_some_gives_up_after_its_wait) {
  memory_transport t{with_timeout(30000ms, 2)};
  std::vector<envelope> batch;
  for (int i = 0; i < 5; ++i) {
    batch.push_back(make(std::to_string(i)));
  }
  auto started = std::chrono::steady_clock::now();
  BOOST_TEST(t.publish_some(batch, 0, 30ms) == 2u);
  BOOST_TEST(ms_since(started) >= 30);
  envelope_batch b;
  BOOST_REQUIRE(bool(t.poll(2, 0ms, b)));
  BOOST_REQUIRE(bool(t.ack(pointers(b))));
  BOOST_TEST(t.publish_some(batch, 2, 30ms) == 2u);
  BOOST_TEST(t.publish_some(batch, 5, 30ms) == 0u);
}

BOOST_AUTO_TEST_CASE(exhausted_needs_closed_input_and_nothing_left) {
  memory_transport t;
  BOOST_TEST(!t.exhausted());
  BOOST_REQUIRE(bool(t.publish(make("a"))));
  t.close_input();
  BOOST_TEST(!t.accepts_input());
  BOOST_TEST(!t.publish(make("b")));
  BOOST_TEST(!t.exhausted());
  envelope_batch b;
  BOOST_REQUIRE(bool(t.poll(1, 0ms, b)));
  BOOST_TEST(!t.exhausted()); // in flight
  BOOST_REQUIRE(bool(t.nack(b[0], 20ms)));
  BOOST_TEST(!t.exhausted()); // delayed
  envelope_batch b2;
  BOOST_REQUIRE(bool(t.poll(1, 1000ms, b2)));
  BOOST_REQUIRE(b2.size() == 1u);
  BOOST_REQUIRE(bool(t.ack(pointers(b2))));
  BOOST_TEST(t.exhausted());

  // An exhausted transport answers polls at once.
  auto started = std::chrono::steady_clock::now();
  envelope_batch none;
  BOOST_REQUIRE(bool(t.poll(1, 2000ms, none)));
  BOOST_TEST(none.empty());
  BOOST_TEST(ms_since(started) < 1000);
}

BOOST_AUTO_TEST_CASE(close_wakes_pollers_and_publishers) {
  memory_transport t{with_timeout(30000ms, 1)};
  BOOST_REQUIRE(bool(t.publish(make("a"))));
  std::atomic<bool> publish_ok{true};
  std::thread producer([&] { publish_ok = bool(t.publish(make("b"))); });
  std::this_thread::sleep_for(20ms);
  envelope_batch b;
  BOOST_REQUIRE(bool(t.poll(1, 0ms, b)));
  std::thread poller([&] {
    envelope_batch none;
    BOOST_REQUIRE(bool(t.poll(1, 5000ms, none)));
  });
  std::this_thread::sleep_for(20ms);
  auto started = std::chrono::steady_clock::now();
  BOOST_TEST(bool(t.close()));
  producer.join();
  poller.join();
  BOOST_TEST(ms_since(started) < 2000);
  BOOST_TEST(!publish_ok.load());
  // Settling still works after close.
  BOOST_REQUIRE(bool(t.ack(pointers(b))));
  BOOST_TEST(t.stats().acked == 1u);
}

BOOST_AUTO_TEST_CASE(concurrent_consumers_settle_every_message_once) {
  memory_transport t{with_timeout(30000ms, 512)};
  mailroom::generator_settings g;
  g.messages = 20000;
  mailroom::generator_source gen{t, g};
  gen.start();
  std::atomic<std::uint64_t> acked{0};
  std::vector<std::thread> consumers;
  std::mutex seen_mutex;
  std::unordered_set<std::string> seen;
  for (int c = 0; c < 3; ++c) {
    consumers.emplace_back([&] {
      envelope_batch b;
      std::vector<std::string> ids;
      while (!t.exhausted()) {
        b.clear();
        BOOST_REQUIRE(bool(t.poll(64, 10ms, b)));
        BOOST_REQUIRE(bool(t.ack(pointers(b))));
        for (const auto& e : b) {
          ids.push_back(e.id);
        }
        acked += b.size();
      }
      std::lock_guard<std::mutex> lock{seen_mutex};
      seen.insert(ids.begin(), ids.end());
    });
  }
  for (auto& th : consumers) {
    th.join();
  }
  gen.join();
  BOOST_TEST(acked.load() == 20000u);
  BOOST_TEST(seen.size() == 20000u);
  BOOST_TEST(t.stats().acked == 20000u);
}


// ---- the transport contract ----------------------------------------------------

namespace {

// The contract's view of a memory transport: a visibility timeout of 300 ms
// as the lease, and poison as a delivery over a limit of one.
struct a_memory_transport {
  std::chrono::milliseconds lease{300};
  std::shared_ptr<memory_transport> memory = make_memory(0);
  std::shared_ptr<mailroom::transport> t = memory;

  std::shared_ptr<memory_transport> make_memory(std::uint32_t max_deliveries) {
    memory_transport_settings s;
    s.visibility_timeout = lease;
    s.max_deliveries = max_deliveries;
    return std::make_shared<memory_transport>(s);
  }
  void produce(const std::string& key, const std::string& payload) {
    envelope m;
    m.key = key;
    m.topic = "orders";
    m.payload = payload;
    BOOST_REQUIRE(bool(memory->publish(std::move(m))));
  }
  bool make_poison() {
    memory = make_memory(1);
    t = memory;
    produce("k-p", "crashes its consumer");
    return true;
  }
  std::vector<std::string> dlq_reasons() {
    std::vector<std::string> out;
    for (const auto& d : memory->dead_letters()) {
      out.push_back(d.record.reason);
    }
    return out;
  }
};

} // namespace

MAILROOM_TRANSPORT_CONTRACT(a_memory_transport)
