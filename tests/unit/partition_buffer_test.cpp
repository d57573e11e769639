#define BOOST_TEST_MODULE partition_buffer
#include <boost/test/unit_test.hpp>

// The Kafka transport's per-partition ledger, on its own: the commit point
// never passes an unsettled offset, and a retry holds back what its
// ordering mode orders it with.

#include "transports/kafka/partition_buffer.hpp"

using mailroom::envelope;
using mailroom::envelope_batch;
using mailroom::ordering_mode;
using mailroom::kafka::partition_buffer;
using namespace std::chrono_literals;

namespace {

envelope record(std::int64_t offset, const std::string& key = "k") {
  envelope e;
  e.handle.offset = offset;
  e.ordering_key = key;
  e.payload = key + "@" + std::to_string(offset);
  return e;
}

std::vector<std::int64_t> offsets(const envelope_batch& b) {
  std::vector<std::int64_t> out;
  for (const auto& m : b) {
    out.push_back(m.handle.offset);
  }
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(the_commit_point_is_the_lowest_unsettled_offset) {
  partition_buffer p{1, ordering_mode::unordered};
  BOOST_TEST(p.commit_point() == -1); // nothing fetched
  for (std::int64_t o : {10, 11, 12, 14}) { // 13: a compacted gap
    p.push(record(o));
  }
  envelope_batch out;
  BOOST_TEST(p.take(10, out) == 4u);
  BOOST_TEST(p.commit_point() == 10);
  BOOST_TEST(p.settle(12));
  BOOST_TEST(p.settle(14));
  BOOST_TEST(p.commit_point() == 10); // 10 and 11 still unsettled
  BOOST_TEST(p.settle(10));
  BOOST_TEST(p.commit_point() == 11);
  BOOST_TEST(!p.settle(10)); // twice: stale
  BOOST_TEST(!p.settle(99)); // never fetched
  BOOST_TEST(p.settle(11));
  BOOST_TEST(p.commit_point() == 15); // past the gap: one after the highest
  BOOST_TEST(p.unsettled_count() == 0u);
}

BOOST_AUTO_TEST_CASE(buffered_records_count_as_unsettled_and_a_drop_keeps_them_so) {
  partition_buffer p{1, ordering_mode::per_partition};
  for (std::int64_t o = 0; o < 5; ++o) {
    p.push(record(o));
  }
  envelope_batch out;
  BOOST_TEST(p.take(2, out) == 2u);
  BOOST_TEST(p.settle(0));
  BOOST_TEST(p.settle(1));
  BOOST_TEST(p.commit_point() == 2); // 2..4 fetched, not handed out
  BOOST_TEST(p.drop_buffered() == 3u);
  BOOST_TEST(p.buffered() == 0u);
  BOOST_TEST(p.commit_point() == 2); // the next owner starts there
}

BOOST_AUTO_TEST_CASE(per_partition_a_retry_holds_the_whole_partition_until_due) {
  partition_buffer p{1, ordering_mode::per_partition};
  p.push(record(0, "a"));
  p.push(record(1, "b"));
  p.push(record(2, "c"));
  auto t0 = mailroom::clock::now();
  envelope_batch first;
  BOOST_TEST(p.take(1, first, t0) == 1u);
  BOOST_TEST(p.requeue(first[0], t0 + 1s)); // a@0 fails, retried in a second
  BOOST_TEST((p.next_due() == t0 + 1s));
  envelope_batch out;
  BOOST_TEST(p.take(10, out, t0 + 500ms) == 0u); // b and c wait behind it
  BOOST_TEST(p.take(10, out, t0 + 1s) == 3u);
  BOOST_TEST((offsets(out) == std::vector<std::int64_t>{0, 1, 2}));
  BOOST_TEST((p.next_due() == mailroom::clock::time_point::max()));
}

BOOST_AUTO_TEST_CASE(per_key_a_retry_holds_only_its_key) {
  partition_buffer p{1, ordering_mode::per_key};
  p.push(record(0, "a"));
  p.push(record(1, "b"));
  p.push(record(2, "a"));
  p.push(record(3, "c"));
  auto t0 = mailroom::clock::now();
  envelope_batch first;
  BOOST_TEST(p.take(1, first, t0) == 1u);
  BOOST_TEST(p.requeue(first[0], t0 + 1s));
  envelope_batch others;
  BOOST_TEST(p.take(10, others, t0) == 2u);
  BOOST_TEST((offsets(others) == std::vector<std::int64_t>{1, 3}));
  BOOST_TEST(p.buffered() == 2u); // a@2 waits behind a@0
  envelope_batch rest;
  BOOST_TEST(p.take(10, rest, t0 + 1s) == 2u);
  BOOST_TEST((offsets(rest) == std::vector<std::int64_t>{0, 2}));
}

// What the engine hands back unstarted behind a retry of its key comes back
// due at once, and still waits behind the retry.
BOOST_AUTO_TEST_CASE(per_key_a_record_handed_back_behind_a_retry_keeps_its_place) {
  partition_buffer p{1, ordering_mode::per_key};
  p.push(record(0, "a"));
  p.push(record(1, "a"));
  p.push(record(2, "b"));
  auto t0 = mailroom::clock::now();
  envelope_batch all;
  BOOST_TEST(p.take(10, all, t0) == 3u);
  BOOST_TEST(p.requeue(all[1], t0)); // a@1, handed back first, due now
  BOOST_TEST(p.requeue(all[0], t0 + 1s)); // then a@0's retry
  envelope_batch out;
  BOOST_TEST(p.take(10, out, t0) == 0u);
  BOOST_TEST(p.take(10, out, t0 + 1s) == 2u);
  BOOST_TEST((offsets(out) == std::vector<std::int64_t>{0, 1}));
  BOOST_TEST(p.requeue(all[2], t0)); // b@2 is unsettled: it may come back
  BOOST_TEST(p.settle(2));
  envelope stale = all[2];
  BOOST_TEST(!p.requeue(stale, t0)); // settled: stale
}

BOOST_AUTO_TEST_CASE(unordered_a_retry_holds_nothing) {
  partition_buffer p{1, ordering_mode::unordered};
  p.push(record(0, "a"));
  p.push(record(1, "a"));
  auto t0 = mailroom::clock::now();
  envelope_batch out;
  BOOST_TEST(p.take(1, out, t0) == 1u);
  BOOST_TEST(p.requeue(out[0], t0 + 1s));
  envelope_batch next;
  BOOST_TEST(p.take(10, next, t0) == 1u);
  BOOST_TEST(next[0].handle.offset == 1);
  BOOST_TEST(p.commit_point() == 0);
}
