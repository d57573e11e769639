#define BOOST_TEST_MODULE cli_sqs
#include <boost/test/unit_test.hpp>

// `mailroom run` as an SQS consumer, against a real SQS server (ElasticMQ,
// one for the executable): conservation with two receivers and with two
// processes, retries up to max attempts and the dead-letter record with its
// attributes (read with boto3), visibility heartbeats on and off, a SIGTERM
// drain, FIFO groups in order under concurrency, a frozen and a restarted
// server, and an unknown queue, an unreachable endpoint, or missing or
// refused credentials at start.

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "clients/aws/sqs_api.hpp"
#include "tests/support/canned_http_server.hpp"
#include "tests/support/cli_sqs.hpp"
#include "tests/support/elasticmq_server.hpp"
#include "tests/support/free_port.hpp"
#include "tests/support/http_scrape.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/redis_server.hpp"

using namespace std::chrono_literals;
using namespace mailroom;
using namespace mailroom::testing;
using mailroom::testing::elasticmq_server;
using mailroom::testing::process_runner;
using mailroom::testing::sqs_client_argv;
using mailroom::testing::summary_value;

BOOST_GLOBAL_FIXTURE(fake_credentials_in_env);

namespace {

std::string temp_path(const std::string& name) {
  return "/tmp/mailroom-cli-sqs-" + std::to_string(::getpid()) + "-" + name;
}

bool eventually_true(const std::function<bool()>& pred, std::chrono::seconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(200ms);
  }
  return pred();
}

// The lines of `path` in the order they were written.
std::vector<std::string> ordered_lines_of(const std::string& path) {
  std::ifstream in{path};
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

std::multiset<std::string> lines_of(const std::string& path) {
  auto lines = ordered_lines_of(path);
  return {lines.begin(), lines.end()};
}

std::string stop(process_runner& p) {
  p.signal(SIGTERM);
  int rc = p.wait(30s);
  BOOST_REQUIRE_MESSAGE(rc == 0, "exit " << rc << "\n" << p.out() << "\n" << p.err());
  return p.out();
}

} // namespace

BOOST_AUTO_TEST_CASE(every_message_is_handled_once_and_the_queue_ends_empty) {
  auto url = create_queue(unique_name("conserve"));
  auto dlq = create_queue(unique_name("conserve-dlq"));
  auto mark = temp_path("conserve");
  std::vector<std::string> bodies;
  for (int i = 0; i < 300; ++i) {
    bodies.push_back("{\"n\":" + std::to_string(i) + "}");
  }
  send_all(url, bodies);
  process_runner p{sqs_run(url, dlq,
                           {"transport.sqs.receivers=2", "engine.workers=4",
                            "handler.type=\"exec\"",
                            "handler.command=[\"/bin/sh\", \"-c\", \"echo $MAILROOM_MESSAGE_ID "
                            ">> " + mark + "\"]"})};
  BOOST_REQUIRE_MESSAGE(eventually_true([&] { return held_by(url) == 0; }, 45s), p.err());
  auto out = stop(p);
  auto marks = lines_of(mark);
  BOOST_TEST(marks.size() == 300u);
  BOOST_TEST(std::set<std::string>(marks.begin(), marks.end()).size() == 300u);
  BOOST_TEST(summary_value(out, "acked") == 300);
  BOOST_TEST(summary_value(out, "dead-lettered") == 0);
  BOOST_TEST(summary_value(out, "DLQ holds") == 0);
  BOOST_TEST(held_by(url) == 0);
  BOOST_TEST(p.err().find("consuming SQS queue " + url) != std::string::npos);
  std::remove(mark.c_str());
}

BOOST_AUTO_TEST_CASE(max_attempts_dead_letters_with_every_attribute) {
  auto url = create_queue(unique_name("dl"));
  auto dlq = create_queue(unique_name("dl-dlq"));
  send_all(url, {R"({"fail_attempts":99,"card":{"number":"4111"}})", "{not json", R"({"ok":1})"});
  process_runner p{sqs_run(url, dlq, {"retry.max_attempts=3"})};
  BOOST_REQUIRE_MESSAGE(eventually_true([&] { return held_by(url) == 0; }, 45s), p.err());
  auto out = stop(p);
  BOOST_TEST(summary_value(out, "acked") == 1);
  BOOST_TEST(summary_value(out, "dead-lettered") == 2);
  BOOST_TEST(summary_value(out, "retried") == 2);
  BOOST_TEST(summary_value(out, "DLQ holds") == 2);
  auto records = boto3({"receive", dlq, "--wait", "1"});
  BOOST_REQUIRE(records.size() == 2u);
  nlohmann::json flaky, bad;
  for (auto& r : records) {
    auto reason = r.at("MessageAttributes").at("mailroom.reason").get<std::string>();
    (reason.find("malformed JSON") != std::string::npos ? bad : flaky) = r;
  }
  BOOST_REQUIRE(!flaky.is_null());
  BOOST_REQUIRE(!bad.is_null());
  const auto& a = flaky.at("MessageAttributes");
  BOOST_TEST(a.at("mailroom.reason").get<std::string>().find("max attempts (3)") !=
             std::string::npos);
  BOOST_TEST(a.at("mailroom.attempts").get<std::string>() == "3");
  BOOST_TEST(nlohmann::json::parse(a.at("mailroom.errors").get<std::string>()).size() == 3u);
  BOOST_TEST(a.at("mailroom.source.queue").get<std::string>() == url);
  BOOST_TEST(!a.at("mailroom.source.message_id").get<std::string>().empty());
  BOOST_TEST(std::stoll(a.at("mailroom.first_failure_ms").get<std::string>()) > 0);
  auto body = flaky.at("Body").get<std::string>();
  BOOST_TEST(body.find("4111") == std::string::npos); // masked
  BOOST_TEST(body.find("***") != std::string::npos);
  // Not JSON while mask_fields is set: redacted (dead_letter.on_unparsable).
  BOOST_TEST(bad.at("Body").get<std::string>().find("{not json") == std::string::npos);
  BOOST_TEST(bad.at("MessageAttributes").at("mailroom.attempts").get<std::string>() == "1");
}

BOOST_AUTO_TEST_CASE(an_unknown_queue_at_start_exits_1_with_the_reason) {
  auto dlq = create_queue(unique_name("x-dlq"));
  auto missing = server().queue_url(unique_name("missing"));
  process_runner p{sqs_run(missing, dlq, {})};
  int rc = p.wait(30s);
  BOOST_TEST(rc == 1);
  BOOST_TEST_MESSAGE(p.err());
  BOOST_TEST(p.err().find("QueueDoesNotExist") != std::string::npos);
  BOOST_TEST(p.err().find(missing) != std::string::npos);
}

// A handler running 3x the visibility timeout: while heartbeats run the
// message is not redelivered and its ack applies; with heartbeats off it is
// received again (and handled again: dedupe is off here) while it runs.
BOOST_AUTO_TEST_CASE(heartbeats_keep_a_slow_message_from_being_redelivered) {
  for (bool heartbeats : {true, false}) {
    BOOST_TEST_CONTEXT("heartbeats " << (heartbeats ? "on" : "off")) {
      auto url = create_queue(unique_name(heartbeats ? "hb-on" : "hb-off"), 3);
      auto dlq = create_queue(unique_name("hb-dlq"));
      auto mark = temp_path(heartbeats ? "hb-on" : "hb-off");
      send_all(url, {R"({"slow":1})"});
      auto begin = std::chrono::steady_clock::now();
      process_runner p{sqs_run(
          url, dlq,
          {"transport.sqs.visibility_timeout_s=3",
           std::string{"transport.sqs.heartbeat_interval_s="} + (heartbeats ? "1" : "0"),
           "dedupe.enabled=false", "sweeper.enabled=false", "engine.workers=2",
           "engine.max_in_flight=2", "engine.handler_timeout_ms=20000",
           "dedupe.claim_ttl_ms=60000", "sweeper.stale_cutoff_ms=60000",
           std::string{"engine.drain_timeout_ms="} + (heartbeats ? "5000" : "500"),
           "handler.type=\"exec\"",
           "handler.command=[\"/bin/sh\", \"-c\", \"echo $MAILROOM_MESSAGE_ID "
           "$MAILROOM_ATTEMPT >> " + mark + "; sleep 9\"]"})};
      if (heartbeats) {
        BOOST_REQUIRE_MESSAGE(eventually_true([&] { return held_by(url) == 0; }, 30s), p.err());
        BOOST_TEST((std::chrono::steady_clock::now() - begin >= 9s));
        auto out = stop(p);
        BOOST_TEST(lines_of(mark).size() == 1u);
        BOOST_TEST(summary_value(out, "acked") == 1);
        BOOST_TEST(summary_value(out, "fenced settles") == 0);
      } else {
        BOOST_TEST(eventually_true([&] { return lines_of(mark).size() >= 2u; }, 8s));
        stop(p);
      }
      std::remove(mark.c_str());
    }
  }
}

// SIGTERM with slow work in flight: the run stops receiving, hands back
// what it did not finish (visibility 0, so another consumer gets it at once)
// and exits 0; nothing stays invisible and nothing is lost.
BOOST_AUTO_TEST_CASE(sigterm_hands_back_unfinished_work_and_exits_0) {
  auto url = create_queue(unique_name("drain"));
  auto dlq = create_queue(unique_name("drain-dlq"));
  auto mark = temp_path("drain");
  std::vector<std::string> bodies;
  for (int i = 0; i < 20; ++i) {
    bodies.push_back("{\"n\":" + std::to_string(i) + "}");
  }
  send_all(url, bodies);
  process_runner p{sqs_run(url, dlq,
                           {"engine.workers=2", "engine.max_in_flight=8",
                            "engine.drain_timeout_ms=500", "handler.type=\"exec\"",
                            "handler.command=[\"/bin/sh\", \"-c\", \"echo $MAILROOM_MESSAGE_ID "
                            ">> " + mark + "; sleep 3\"]"})};
  BOOST_REQUIRE(eventually_true([&] { return lines_of(mark).size() >= 2u; }, 20s));
  auto stopped_at = std::chrono::steady_clock::now();
  auto out = stop(p);
  BOOST_TEST((std::chrono::steady_clock::now() - stopped_at < 10s));
  auto acked = summary_value(out, "acked");
  auto api = client();
  auto a = api.get_queue_attributes(url);
  BOOST_REQUIRE_MESSAGE(a, a.status.what);
  BOOST_TEST(a.value.approximate_number_of_messages_not_visible == 0);
  BOOST_TEST(a.value.approximate_number_of_messages + acked == 20);
  std::remove(mark.c_str());
}

BOOST_AUTO_TEST_CASE(an_unreachable_endpoint_at_start_exits_1_with_the_reason) {
  auto closed = "http://127.0.0.1:" + std::to_string(mailroom::testing::free_port());
  auto args = sqs_run(closed + "/000000000000/q", closed + "/000000000000/d",
                      {"transport.sqs.endpoint_url=\"" + closed + "\"",
                       "transport.sqs.startup_timeout_ms=1000"});
  process_runner p{args};
  int rc = p.wait(30s);
  BOOST_TEST(rc == 1);
  BOOST_TEST_MESSAGE(p.err());
  BOOST_TEST(p.err().find("cannot reach SQS at " + closed) != std::string::npos);
}

// Two processes competing on one queue: between them every message is
// handled once, both take part, and the queue ends empty.
BOOST_AUTO_TEST_CASE(two_processes_share_a_queue_and_handle_each_message_once) {
  auto url = create_queue(unique_name("fleet"));
  auto dlq = create_queue(unique_name("fleet-dlq"));
  auto mark = temp_path("fleet");
  std::vector<std::string> bodies;
  for (int i = 0; i < 200; ++i) {
    bodies.push_back("{\"n\":" + std::to_string(i) + "}");
  }
  send_all(url, bodies);
  auto consumer = [&](const std::string& tag) {
    return sqs_run(url, dlq,
                   {"engine.workers=2", "handler.type=\"exec\"",
                    "handler.command=[\"/bin/sh\", \"-c\", \"echo " + tag +
                        " $MAILROOM_MESSAGE_ID >> " + mark + "; sleep 0.01\"]"});
  };
  process_runner a{consumer("A")};
  process_runner b{consumer("B")};
  BOOST_REQUIRE_MESSAGE(eventually_true([&] { return held_by(url) == 0; }, 45s),
                        a.err() << b.err());
  auto out_a = stop(a);
  auto out_b = stop(b);
  auto marks = lines_of(mark);
  std::set<std::string> ids;
  std::map<char, int> by_process;
  for (const auto& m : marks) {
    ids.insert(m.substr(2));
    ++by_process[m[0]];
  }
  BOOST_TEST(marks.size() == 200u);
  BOOST_TEST(ids.size() == 200u);
  BOOST_TEST(by_process['A'] > 0);
  BOOST_TEST(by_process['B'] > 0);
  BOOST_TEST(summary_value(out_a, "acked") + summary_value(out_b, "acked") == 200);
  std::remove(mark.c_str());
}

// kill -9 mid-run, then a second process: nothing is lost (what the first
// held comes back once its visibility ends), and with the Redis dedupe
// store what the first completed is not run again: only what was in flight
// at the kill runs twice.
BOOST_AUTO_TEST_CASE(kill_9_loses_nothing_and_redis_dedupe_keeps_done_work_done) {
  mailroom::testing::redis_server redis;
  auto url = create_queue(unique_name("kill"));
  auto dlq = create_queue(unique_name("kill-dlq"));
  auto mark = temp_path("kill");
  std::vector<std::string> bodies;
  for (int i = 0; i < 150; ++i) {
    bodies.push_back("{\"n\":" + std::to_string(i) + "}");
  }
  send_all(url, bodies);
  auto with = [&](const std::string& tag) {
    return sqs_run(url, dlq,
                   {"dedupe.store=\"redis\"", "sweeper.store=\"redis\"",
                    "redis.port=" + std::to_string(redis.port()),
                    "transport.sqs.visibility_timeout_s=3",
                    "transport.sqs.heartbeat_interval_s=1", "engine.max_in_flight=16",
                    // The first process's claims outlive it by at most 6 s.
                    "dedupe.claim_ttl_ms=6000", "dedupe.in_flight_delay_ms=1000",
                    "engine.workers=2", "handler.type=\"exec\"",
                    "handler.command=[\"/bin/sh\", \"-c\", \"echo " + tag +
                        " $MAILROOM_MESSAGE_ID >> " + mark + "; sleep 0.02\"]"});
  };
  {
    process_runner first{with("A")};
    BOOST_REQUIRE(eventually_true([&] { return lines_of(mark).size() >= 50u; }, 30s));
    first.signal(SIGKILL);
    first.wait(10s);
  }
  process_runner second{with("B")};
  BOOST_REQUIRE_MESSAGE(eventually_true([&] { return held_by(url) == 0; }, 45s), second.err());
  auto out = stop(second);
  auto marks = lines_of(mark);
  std::set<std::string> ids;
  for (const auto& m : marks) {
    ids.insert(m.substr(2));
  }
  BOOST_TEST(ids.size() == 150u); // nothing lost
  BOOST_TEST(summary_value(out, "rejected by transport") == 0, out);
  BOOST_TEST(summary_value(out, "DLQ holds") == 0);
  auto again = marks.size() - 150;
  BOOST_TEST(again <= 16u, again << " messages ran twice");
  BOOST_TEST_MESSAGE(again << " messages ran twice; "
                           << summary_value(out, "of which duplicates")
                           << " acked as duplicates by the second process");
  std::remove(mark.c_str());
}

// A message that kills its consumer on every delivery never records an
// error; SQS counts its receives, so after max_receives the next process
// dead-letters it unhandled (no Redis needed to count across restarts).
BOOST_AUTO_TEST_CASE(a_message_that_kills_its_consumer_ends_in_the_dlq) {
  auto url = create_queue(unique_name("crash"));
  auto dlq = create_queue(unique_name("crash-dlq"));
  auto mark = temp_path("crash");
  send_all(url, {"crash", "fine"});
  auto script = "b=$(cat); echo $MAILROOM_ATTEMPT $b >> " + mark +
                "; if [ \\\"$b\\\" = crash ]; then kill -9 $PPID; sleep 5; fi";
  std::vector<std::string> sets{"transport.sqs.visibility_timeout_s=2",
                                "transport.sqs.heartbeat_interval_s=0",
                                "transport.sqs.max_receives=2", "retry.max_attempts=2",
                                "engine.workers=1", "engine.max_in_flight=1",
                                "handler.type=\"exec\"",
                                "handler.command=[\"/bin/sh\", \"-c\", \"" + script + "\"]"};
  std::string out;
  for (int run = 0; run < 6 && held_by(url) != 0; ++run) {
    process_runner p{sqs_run(url, dlq, sets)};
    bool done = eventually_true([&] { return p.wait(0ms) != -1 || held_by(url) == 0; }, 30s);
    BOOST_REQUIRE(done);
    if (p.wait(0ms) == -1) {
      out = stop(p);
    }
  }
  BOOST_REQUIRE(held_by(url) == 0);
  auto records = boto3({"receive", dlq, "--wait", "1"});
  BOOST_REQUIRE_MESSAGE(records.size() == 1u, "marks:\n" << lines_of(mark).size()
                                                         << "\nlast run:\n" << out);
  BOOST_TEST(records[0].at("MessageAttributes").at("mailroom.reason").get<std::string>() ==
             "receive count 3 exceeds 2");
  BOOST_TEST(summary_value(out, "rejected by transport") == 1);
  auto marks = lines_of(mark);
  BOOST_TEST(marks.count("1 crash") == 1u);
  BOOST_TEST(marks.count("2 crash") == 1u);
  BOOST_TEST(marks.count("3 crash") == 0u); // rejected, never run a third time
  std::remove(mark.c_str());
}

namespace {


void send_numbered(const elasticmq_server& own, const std::string& url, int from,
                   int to) {
  auto api = client_of(own);
  for (int i = from; i < to; ++i) {
    sqs_send_request r;
    r.queue_url = url;
    r.body = "{\"n\":" + std::to_string(i) + "}";
    auto sent = api.send_message(r);
    BOOST_REQUIRE_MESSAGE(sent, sent.status.what);
  }
}

} // namespace

// A FIFO queue under four workers and two receivers: each group's messages
// start strictly in order; the third message of group gb fails once (exit
// 75, after 2 s) and what gb has behind it waits for its retry, while ga and
// gc, not held back, finish meanwhile.
BOOST_AUTO_TEST_CASE(
    fifo_groups_keep_their_order_and_a_failure_holds_back_only_its_group) {
  auto url = create_queue(unique_name("groups") + ".fifo");
  auto dlq = create_queue(unique_name("groups-dlq"));
  auto mark = temp_path("groups");
  auto api = client();
  const std::vector<std::string> groups{"ga", "gb", "gc"};
  constexpr int per_group = 8;
  for (int i = 0; i < per_group; ++i) {
    for (const auto& g : groups) {
      sqs_send_request r;
      r.queue_url = url;
      r.body = g + "-" + std::to_string(i);
      r.group_id = g;
      auto sent = api.send_message(r);
      BOOST_REQUIRE_MESSAGE(sent, sent.status.what);
    }
  }
  auto script =
      "b=$(cat); echo $b $MAILROOM_ATTEMPT >> " + mark +
      "; if [ $b = gb-2 ] && [ $MAILROOM_ATTEMPT = 1 ]; then sleep 2; exit 75; fi;"
      " sleep 0.05";
  process_runner p{
      sqs_run(url, dlq,
              {"transport.sqs.receivers=2", "engine.workers=4", "engine.max_in_flight=32",
               "dedupe.enabled=false", "sweeper.enabled=false", "retry.max_attempts=3",
               "handler.type=\"exec\"",
               "handler.command=[\"/bin/sh\", \"-c\", \"" + script + "\"]"})};
  BOOST_REQUIRE_MESSAGE(eventually_true([&] { return held_by(url) == 0; }, 60s), p.err());
  auto out = stop(p);
  auto lines = ordered_lines_of(mark);
  BOOST_TEST(lines.size() == static_cast<std::size_t>(3 * per_group + 1));
  BOOST_TEST(summary_value(out, "acked") == 3 * per_group);
  BOOST_TEST(summary_value(out, "retried") == 1);
  BOOST_TEST(summary_value(out, "dead-lettered") == 0);
  // Each line is "<body> <attempt>"; the attempt is SQS's receive count, so
  // what was handed back behind gb-2 shows 2 although it ran once.
  std::map<std::string, std::vector<std::string>> started;
  std::size_t retry_at = lines.size();
  std::map<std::string, std::size_t> last_line_of;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto g = lines[i].substr(0, 2);
    started[g].push_back(lines[i].substr(0, lines[i].find(' ')));
    last_line_of[g] = i;
    if (lines[i] == "gb-2 2") {
      retry_at = i;
    }
  }
  BOOST_TEST(retry_at < lines.size()); // gb-2 ran a second time
  for (const auto& g : {std::string{"ga"}, std::string{"gc"}}) {
    std::vector<std::string> expected;
    for (int i = 0; i < per_group; ++i) {
      expected.push_back(g + "-" + std::to_string(i));
    }
    BOOST_TEST(started[g] == expected, boost::test_tools::per_element());
    // Not held back by gb's failure: done before gb-2 ran again.
    BOOST_TEST(last_line_of[g] < retry_at, g << " ended at line " << last_line_of[g]);
  }
  std::vector<std::string> expected_b{"gb-0", "gb-1", "gb-2", "gb-2"};
  for (int i = 3; i < per_group; ++i) {
    expected_b.push_back("gb-" + std::to_string(i));
  }
  BOOST_TEST(started["gb"] == expected_b, boost::test_tools::per_element());
  std::remove(mark.c_str());
}

// The server frozen for 3 s mid-run (nothing answers, connections stay
// open), then stopped and started again (ElasticMQ keeps its queues in
// memory: they come back empty): the run pauses, says so, resumes both
// times, and every message the server still held is handled, none lost.
BOOST_AUTO_TEST_CASE(
    a_frozen_and_then_restarted_server_pauses_the_run_and_loses_nothing) {
  elasticmq_server::queue q, d;
  q.name = "outage";
  q.visibility_timeout_s = 10;
  d.name = "outage-dlq";
  elasticmq_server own{{q, d}};
  const auto url = own.queue_url("outage");
  auto mark = temp_path("outage");
  send_numbered(own, url, 0, 120);
  const int http_port = free_port();
  auto ready = [&] { return http_get(http_port, "/readyz"); };
  process_runner p{
      sqs_run(url, own.queue_url("outage-dlq"),
              {"transport.sqs.endpoint_url=\"" + own.endpoint() + "\"",
               "http.listen=\"127.0.0.1:" + std::to_string(http_port) + "\"",
               "transport.sqs.request_timeout_ms=1000", "transport.sqs.receivers=2",
               "engine.workers=2", "engine.max_in_flight=16", "handler.type=\"exec\"",
               "handler.command=[\"/bin/sh\", \"-c\", \"echo $(cat) >> " + mark +
                   "; sleep 0.02\"]"})};
  BOOST_REQUIRE_MESSAGE(
      eventually_true([&] { return lines_of(mark).size() >= 30u; }, 30s), p.err());
  BOOST_TEST(eventually_true([&] { return ready().status == 200; }, 10s));
  own.pause();
  // /readyz sees the frozen server (its probe is bounded by 500 ms).
  auto began = std::chrono::steady_clock::now();
  BOOST_TEST(eventually_true(
      [&] {
        auto r = ready();
        return r.status == 503 && r.body.find("\"transport\"") != std::string::npos &&
               r.body.find(url) != std::string::npos;
      },
      10s));
  std::this_thread::sleep_until(began + 3s);
  own.resume();
  BOOST_TEST(eventually_true([&] { return ready().status == 200; }, 10s));
  BOOST_REQUIRE_MESSAGE(eventually_true([&] { return held_by(own, url) == 0; }, 60s),
                        p.err());
  auto first = lines_of(mark);
  BOOST_TEST(std::set<std::string>(first.begin(), first.end()).size() == 120u);

  own.restart();
  send_numbered(own, url, 120, 150);
  BOOST_REQUIRE_MESSAGE(eventually_true([&] { return held_by(own, url) == 0; }, 60s),
                        p.err());
  BOOST_TEST(p.wait(0ms) == -1); // still running
  auto out = stop(p);
  auto all = lines_of(mark);
  BOOST_TEST(std::set<std::string>(all.begin(), all.end()).size() == 150u);
  // A delete whose reply was lost in the freeze is sent again and answered
  // "receipt handle invalid": the transport cannot tell that from a message
  // received elsewhere meanwhile, so it counts the settle as fenced.
  BOOST_TEST(summary_value(out, "acked") + summary_value(out, "fenced settles") >= 150,
             out);
  BOOST_TEST(summary_value(out, "dead-lettered") == 0);
  std::remove(mark.c_str());
}

// No usable credentials at start: a clear message naming what is missing
// (the variable, the profile and the file), exit 1, and no secret printed.
BOOST_AUTO_TEST_CASE(
    missing_or_incomplete_credentials_at_start_exit_1_naming_what_is_missing) {
  auto url = create_queue(unique_name("creds"));
  auto dlq = create_queue(unique_name("creds-dlq"));
  auto file = temp_path("credentials");
  {
    std::ofstream f{file};
    f << "[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = s3cr3t-other\n"
         "[half]\naws_access_key_id = AKIAHALF\n";
  }
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", file.c_str(), 1);
  struct restore_env {
    ~restore_env() {
      ::setenv("AWS_ACCESS_KEY_ID", "mailroom-test", 1);
      ::setenv("AWS_SECRET_ACCESS_KEY", "mailroom-test", 1);
      ::unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    }
  } restore;
  for (auto [profile, why] : {std::pair{"nobody", "no profile 'nobody' in " + file},
                              std::pair{"half", "profile 'half' in " + file +
                                                    " has no aws_secret_access_key"}}) {
    BOOST_TEST_CONTEXT("profile " << profile) {
      process_runner p{
          sqs_run(url, dlq, {std::string{"transport.sqs.profile=\""} + profile + "\""})};
      int rc = p.wait(30s);
      BOOST_TEST(rc == 1);
      BOOST_TEST_MESSAGE(p.err());
      BOOST_TEST(p.err().find("no AWS credentials for SQS") != std::string::npos,
                 p.err());
      BOOST_TEST(p.err().find(why) != std::string::npos, p.err());
      BOOST_TEST(p.err().find("s3cr3t") == std::string::npos);
      BOOST_TEST(p.out().find("s3cr3t") == std::string::npos);
    }
  }
  std::remove(file.c_str());
}

// Credentials the service refuses (ElasticMQ checks none, so a scripted
// server answers as SQS does): exit 1 at start with AWS's code and message,
// and nothing of the signature or the secret in the output.
BOOST_AUTO_TEST_CASE(refused_credentials_at_start_exit_1_with_the_service_message) {
  mailroom::testing::canned_http_server fake{
      {{403,
        {},
        R"({"__type":"com.amazonaws.sqs#InvalidClientTokenId",)"
        R"("message":"The security token included in the request is invalid."})",
        false}}};
  auto queue = fake.origin() + "/000000000000/q";
  process_runner p{sqs_run(queue, fake.origin() + "/000000000000/d",
                           {"transport.sqs.endpoint_url=\"" + fake.origin() + "\""})};
  int rc = p.wait(30s);
  BOOST_TEST(rc == 1);
  BOOST_TEST_MESSAGE(p.err());
  BOOST_TEST(p.err().find("InvalidClientTokenId") != std::string::npos, p.err());
  BOOST_TEST(p.err().find("The security token included in the request is invalid.") !=
                 std::string::npos,
             p.err());
  BOOST_TEST(p.err().find("Signature=") == std::string::npos);
  BOOST_TEST(p.err().find("AWS4-HMAC-SHA256") == std::string::npos);
  BOOST_TEST(fake.requests().size() >= 1u);
}
