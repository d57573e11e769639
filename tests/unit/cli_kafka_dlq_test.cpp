#define BOOST_TEST_MODULE cli_kafka_dlq
#include <boost/test/unit_test.hpp>

// `mailroom dlq` on the Kafka transport against a real broker (KRaft) and,
// where dedupe is shared, a real redis-server: list, show, replay after the
// bug is fixed (not deduped away, handled once), purge with filters and
// --yes, bad requests, and a replay killed half-way (each record replayed or
// still in the DLQ, never both: one transaction per record). Records are
// read back with kcat.

#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "tests/support/cli_kafka.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/kafka_admin.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/redis_server.hpp"

using namespace std::chrono_literals;
using namespace mailroom::testing;

namespace {

std::string temp_file(const std::string& stem) {
  return "/tmp/mailroom-kafka-dlq-" + std::to_string(::getpid()) + "-" + stem;
}

std::vector<std::string> lines_in(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

// `mailroom dlq <words>` for the deployment of `topic` / `group`.
std::vector<std::string> dlq_args(const std::string& topic, const std::string& group,
                                  std::vector<std::string> words,
                                  std::vector<std::string> sets = {}) {
  auto args = kafka_run(topic, group, std::move(sets), "dlq");
  args.insert(args.begin() + 2, words.begin(), words.end());
  return args;
}

int run_to_end(std::vector<std::string> args, std::string& out, std::string& err) {
  process_runner p{std::move(args)};
  int rc = p.wait(120s);
  out = p.out();
  err = p.err();
  return rc;
}

// Parks `n` records of `reason` straight into `topic`'s dead-letter topic
// with the headers the transport writes (keys "<tag>-<i>").
void park(const std::string& topic, int n, const std::string& reason, const std::string& tag) {
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) {
    lines.push_back(tag + "-" + std::to_string(i) + ":{\"n\":" + std::to_string(i) + "}");
  }
  produce(shared_broker(), topic + ".dlq", lines, true,
          {"mailroom.reason=" + reason, "mailroom.attempts=3", "mailroom.errors=[\"e1\"]",
           "mailroom.source.topic=" + topic, "mailroom.source.partition=0",
           "mailroom.source.offset=7", "mailroom.key=" + tag,
           "mailroom.dead_lettered_at_ms=1796000000000", "trace=t-1"});
}

// The DLQ ids `mailroom dlq list --json` prints.
std::vector<std::string> listed_ids(const std::string& topic, const std::string& group) {
  std::string out, err;
  BOOST_REQUIRE_MESSAGE(
      run_to_end(dlq_args(topic, group, {"list", "--json", "--limit", "1000000"}), out, err) == 0,
      err);
  std::vector<std::string> ids;
  for (const auto& line : lines_in(out)) {
    ids.push_back(nlohmann::json::parse(line).at("id").get<std::string>());
  }
  return ids;
}

} // namespace

BOOST_AUTO_TEST_CASE(records_of_a_fixed_bug_are_listed_shown_replayed_and_handled_once) {
  constexpr int n = 10;
  redis_server redis;
  auto topic = unique_name("dlqfix");
  auto group = unique_name("g");
  create_topic_with_dlq(shared_broker(), topic, 2);
  for (int i = 0; i < n; ++i) { // the idempotency key is the "idem" header
    produce(shared_broker(), topic, {"k" + std::to_string(i) + ":{\"n\":" + std::to_string(i) + "}"},
            true, {"idem=i-" + std::to_string(i)});
  }
  auto flag = temp_file("bug"), mark = temp_file("mark");
  std::ofstream{flag} << "the bug\n";
  std::vector<std::string> sets{
      "dedupe.store=\"redis\"", "redis.port=" + std::to_string(redis.port()),
      "retry.max_attempts=1", "handler.type=\"exec\"",
      "handler.command=[\"/bin/sh\", \"-c\", \"if [ -e " + flag + " ]; then echo bug >&2; "
      "exit 3; fi; echo $MAILROOM_MESSAGE_ID >> " + mark + "\"]"};
  {
    process_runner run{kafka_run(topic, group, sets)};
    BOOST_REQUIRE_MESSAGE(
        eventually([&] { return read_topic(shared_broker(), topic + ".dlq").size() == n; }, 90s,
                   200ms),
        run.err());
    run.signal(SIGTERM);
    BOOST_REQUIRE(run.wait(30s) == 0);
  }
  std::string out, err;
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"list", "--json"}, sets), out, err) == 0, err);
  BOOST_TEST(lines_in(out).size() == static_cast<std::size_t>(n), out);
  BOOST_TEST(out.find("\"reason\":\"exec exited 3: bug") != std::string::npos, out);
  BOOST_TEST(out.find("\"origin\":\"" + topic + "/") != std::string::npos, out);
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"list", "--limit", "3"}, sets), out, err) == 0);
  BOOST_TEST(lines_in(out).size() == 3u);
  auto first = listed_ids(topic, group).front();
  BOOST_TEST(first.rfind(topic + ".dlq/0/", 0) == 0, first);
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"show", first}, sets), out, err) == 0, err);
  auto shown = nlohmann::json::parse(out);
  BOOST_TEST(shown.at("key").get<std::string>().rfind("i-", 0) == 0, out);
  BOOST_TEST(shown.at("broker_key").get<std::string>().rfind("k", 0) == 0, out);
  BOOST_TEST(shown.at("payload").get<std::string>().find("\"n\":") != std::string::npos, out);
  BOOST_TEST(shown.at("headers").contains("idem"), out);
  BOOST_TEST(shown.at("errors").is_array(), out);
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"show", topic + ".dlq/0/999"}, sets), out,
                        err) == 1);
  BOOST_TEST(err.find("no record") != std::string::npos, err);

  // The dry run changes nothing; the bug fixed, each replay is handled once
  // (the dead-letter left its key done in Redis: the replay cleared it).
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"replay", "--all", "--dry-run"}, sets), out,
                        err) == 0);
  BOOST_TEST(lines_in(out).size() == static_cast<std::size_t>(n));
  BOOST_TEST(read_topic(shared_broker(), topic).size() == static_cast<std::size_t>(n));
  std::remove(flag.c_str());
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"replay", "--all"}, sets), out, err) == 0, err);
  BOOST_TEST(err.find("replayed 10 of") != std::string::npos, err);
  BOOST_TEST(listed_ids(topic, group).empty());
  std::map<std::string, int> replays;
  for (auto& r : read_topic(shared_broker(), topic)) {
    if (r.headers.count("mailroom.replay_of") != 0) {
      BOOST_TEST(r.headers["mailroom.replayed"] == "1");
      BOOST_TEST(r.headers["idem"].rfind("i-", 0) == 0); // its own headers kept
      BOOST_TEST(r.key.rfind("k", 0) == 0);              // and its key
      ++replays[r.headers["mailroom.replay_of"]];
    }
  }
  BOOST_TEST(replays.size() == static_cast<std::size_t>(n));
  {
    process_runner run{kafka_run(topic, group, sets)};
    BOOST_REQUIRE_MESSAGE(
        eventually([&] { return lines_in(file_text(mark)).size() >= n; }, 90s, 100ms), run.err());
    std::this_thread::sleep_for(1s);
    run.signal(SIGTERM);
    BOOST_REQUIRE(run.wait(30s) == 0);
    BOOST_TEST(summary_value(run.out(), "acked") == n);
    BOOST_TEST(summary_value(run.out(), "of which duplicates") == 0);
    BOOST_TEST(summary_value(run.out(), "dead-lettered") == 0);
  }
  BOOST_TEST(lines_in(file_text(mark)).size() == static_cast<std::size_t>(n));
  std::remove(mark.c_str());
}

BOOST_AUTO_TEST_CASE(purge_takes_only_what_its_filters_name_and_only_with_yes) {
  auto topic = unique_name("dlqpurge");
  auto group = unique_name("g");
  create_topic_with_dlq(shared_broker(), topic, 1);
  park(topic, 3, "exec exited 3: bug", "b");
  park(topic, 2, "timeout", "t");
  std::string out, err;
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"purge", "--reason", "^exec"}), out, err) == 2);
  BOOST_TEST(lines_in(out).size() == 3u, out); // what it would purge
  BOOST_TEST(listed_ids(topic, group).size() == 5u);
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"purge", "--reason", "^exec", "--yes"}), out,
                        err) == 0, err);
  BOOST_TEST(err.find("purged 3 of") != std::string::npos, err);
  auto left = listed_ids(topic, group);
  BOOST_TEST(left.size() == 2u);
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"list"}), out, err) == 0);
  BOOST_TEST(out.find("exec exited") == std::string::npos, out);
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"purge", "--id", left.front(), "--yes"}), out,
                        err) == 0, err);
  BOOST_TEST(listed_ids(topic, group) == std::vector<std::string>{left.back()});
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"show", left.back()}), out, err) == 0, err);
  auto shown = nlohmann::json::parse(out);
  BOOST_TEST(shown.at("errors") == nlohmann::json::parse("[\"e1\"]"), out);
  BOOST_TEST(shown.at("attempts") == 3, out);
  BOOST_TEST(shown.at("origin") == topic + "/0/7", out);
  BOOST_TEST(shown.at("headers").at("trace") == "t-1", out);
  BOOST_TEST(read_topic(shared_broker(), topic).empty()); // purge never writes back
  // The marks are in the settled topic; the DLQ topic itself keeps its log.
  BOOST_TEST(read_topic(shared_broker(), topic + ".dlq").size() == 5u);
  BOOST_TEST(read_topic(shared_broker(), topic + ".dlq.settled").size() == 4u);
}

BOOST_AUTO_TEST_CASE(bad_requests_are_named_and_unreachable_brokers_exit_1) {
  auto topic = unique_name("dlqbad");
  auto group = unique_name("g");
  std::string out, err;
  // No dead-letter topic: named.
  create_topic(shared_broker(), topic, 1);
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"list"}), out, err) == 1);
  BOOST_TEST(err.find("dead-letter topic \"" + topic + ".dlq\" does not exist") !=
                 std::string::npos, err);
  create_topic(shared_broker(), topic + ".dlq", 1);
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"show", "not-an-id"}), out, err) == 1);
  BOOST_TEST(err.find("no record not-an-id") != std::string::npos, err);
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"replay"}), out, err) == 2);
  // A record without its origin cannot go back: said, nothing changed.
  produce(shared_broker(), topic + ".dlq", {"x:{}"}, true, {"mailroom.reason=odd"});
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"replay", "--all"}), out, err) == 1);
  BOOST_TEST(err.find("does not say where it came from") != std::string::npos, err);
  BOOST_TEST(listed_ids(topic, group).size() == 1u);
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"list"},
                                 {"transport.kafka.brokers=\"127.0.0.1:1\""}),
                        out, err) == 1);
  BOOST_TEST(err.find("mailroom dlq: kafka dlq (127.0.0.1:1)") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(a_replay_killed_half_way_leaves_each_record_in_exactly_one_place) {
  constexpr int n = 1000;
  auto topic = unique_name("dlqkill");
  auto group = unique_name("g");
  create_topic_with_dlq(shared_broker(), topic, 2);
  park(topic, n, "exec exited 3: bug", "k");
  const auto parked = listed_ids(topic, group);
  BOOST_REQUIRE_EQUAL(parked.size(), static_cast<std::size_t>(n));
  {
    process_runner replay{dlq_args(topic, group, {"replay", "--all"})};
    // The high watermark counts what is being written too: past 300 the
    // first transaction (200 records) has committed, the second is open.
    BOOST_REQUIRE(eventually(
        [&] {
          auto end = end_offsets(shared_broker(), topic, 2);
          return end[0] + end[1] >= 300;
        },
        60s, 20ms));
    replay.signal(SIGKILL);
    replay.wait(10s);
  }
  auto check_once = [&](std::size_t expect_left) {
    std::set<std::string> seen;
    auto left = listed_ids(topic, group);
    for (const auto& id : left) {
      seen.insert(id);
    }
    std::size_t replayed = 0;
    for (auto& r : read_topic(shared_broker(), topic)) {
      ++replayed;
      BOOST_CHECK_MESSAGE(seen.insert(r.headers["mailroom.replay_of"]).second,
                          "record " << r.headers["mailroom.replay_of"] << " in two places");
    }
    BOOST_TEST(seen == std::set<std::string>(parked.begin(), parked.end())); // none lost
    BOOST_TEST(left.size() + replayed == static_cast<std::size_t>(n));
    if (expect_left != static_cast<std::size_t>(-1)) {
      BOOST_TEST(left.size() == expect_left);
    }
    return left.size();
  };
  auto left = check_once(static_cast<std::size_t>(-1));
  BOOST_TEST_MESSAGE("killed with " << left << " of " << n << " left");
  BOOST_TEST(left > 0u);                               // it was cut short
  BOOST_TEST(left < static_cast<std::size_t>(n));      // after a commit
  // Run again: the rest goes, nothing twice.
  std::string out, err;
  auto began = std::chrono::steady_clock::now();
  BOOST_TEST(run_to_end(dlq_args(topic, group, {"replay", "--all"}), out, err) == 0, err);
  BOOST_TEST_MESSAGE("replayed the other " << left << " in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - began).count() << " ms");
  check_once(0);
}
