#define BOOST_TEST_MODULE cli_sqs_dlq
#include <boost/test/unit_test.hpp>

// `mailroom dlq` on the SQS transport against a real SQS server (ElasticMQ)
// and, where dedupe is shared, a real redis-server: list, show, replay after
// the bug is fixed (not deduped away, handled once), purge with filters and
// --yes, the records a queue's redrive policy moved, bad requests, and a
// replay killed half-way (never lost; a record cut between its copy and its
// delete is sent again by the rerun under the same idempotency key, so it
// is handled once). Records are read back with boto3.

#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cli_sqs.hpp"
#include "transports/sqs/sqs_transport_settings.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/redis_server.hpp"

using namespace std::chrono_literals;
using namespace mailroom;
using namespace mailroom::testing;

BOOST_GLOBAL_FIXTURE(fake_credentials_in_env);

namespace {

std::string temp_file(const std::string& stem) {
  return "/tmp/mailroom-sqs-dlq-" + std::to_string(::getpid()) + "-" + stem;
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

// `mailroom dlq <words>` for the deployment consuming `url`.
std::vector<std::string> dlq_args(const std::string& url, const std::string& dlq,
                                  std::vector<std::string> words,
                                  std::vector<std::string> sets = {}) {
  auto args = sqs_run(url, dlq, std::move(sets), "dlq");
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

void send_with(const std::string& url, const std::string& body,
               const sqs_message_attributes& attributes) {
  auto api = client();
  sqs_send_request r;
  r.queue_url = url;
  r.body = body;
  r.attributes = attributes;
  auto sent = api.send_message(r);
  BOOST_REQUIRE_MESSAGE(sent, sent.status.what);
}

// Parks `n` records of `reason` from `source` straight into `dlq` with the
// attributes the transport writes (keys "<tag>-<i>", a "trace" attribute).
void park(const std::string& dlq, const std::string& source, int n, const std::string& reason,
          const std::string& tag) {
  for (int i = 0; i < n; ++i) {
    auto key = tag + "-" + std::to_string(i);
    send_with(dlq, "{\"n\":" + std::to_string(i) + "}",
              {{"mailroom.reason", {"String", reason, {}}},
               {"mailroom.attempts", {"Number", "3", {}}},
               {"mailroom.errors", {"String", "[\"e1\"]", {}}},
               {"mailroom.source.queue", {"String", source, {}}},
               {"mailroom.source.message_id", {"String", "src-" + key, {}}},
               {"mailroom.key", {"String", key, {}}},
               {"mailroom.dead_lettered_at_ms", {"Number", "1796000000000", {}}},
               {"mailroom.original",
                {"String", R"({"attributes":[["trace","t-1"]]})", {}}}});
  }
}

// The DLQ ids `mailroom dlq list --json` prints.
std::vector<std::string> listed_ids(const std::string& url, const std::string& dlq,
                                    std::vector<std::string> sets = {}) {
  std::string out, err;
  BOOST_REQUIRE_MESSAGE(run_to_end(dlq_args(url, dlq, {"list", "--json", "--limit", "1000000"},
                                            std::move(sets)),
                                   out, err) == 0,
                        err);
  std::vector<std::string> ids;
  for (const auto& line : lines_in(out)) {
    ids.push_back(nlohmann::json::parse(line).at("id").get<std::string>());
  }
  return ids;
}

std::vector<std::string> exec_handler(const std::string& flag, const std::string& mark) {
  return {"handler.type=\"exec\"",
          "handler.command=[\"/bin/sh\", \"-c\", \"if [ -e " + flag +
              " ]; then echo bug >&2; exit 3; fi; echo $MAILROOM_KEY >> " + mark + "\"]"};
}

void stop(process_runner& run) {
  run.signal(SIGTERM);
  BOOST_REQUIRE_MESSAGE(run.wait(30s) == 0, run.err());
}

} // namespace

BOOST_AUTO_TEST_CASE(records_of_a_fixed_bug_are_listed_shown_replayed_and_handled_once) {
  constexpr int n = 10;
  redis_server redis;
  auto url = create_queue(unique_name("fix"));
  auto dlq = create_queue(unique_name("fix-dlq"));
  for (int i = 0; i < n; ++i) { // the idempotency key is the "idem" attribute
    send_with(url, "{\"n\":" + std::to_string(i) + "}",
              {{"idem", {"String", "i-" + std::to_string(i), {}}}});
  }
  auto flag = temp_file("bug"), mark = temp_file("mark");
  std::ofstream{flag} << "the bug\n";
  std::vector<std::string> sets{"dedupe.store=\"redis\"",
                                "redis.port=" + std::to_string(redis.port()),
                                "retry.max_attempts=1", "transport.sqs.key_attribute=\"idem\""};
  auto handler = exec_handler(flag, mark);
  sets.insert(sets.end(), handler.begin(), handler.end());
  {
    process_runner run{sqs_run(url, dlq, sets)};
    BOOST_REQUIRE_MESSAGE(
        eventually([&] { return held_by(dlq) == n && held_by(url) == 0; }, 60s, 200ms),
        run.err());
    stop(run);
  }
  std::string out, err;
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"list", "--json"}, sets), out, err) == 0, err);
  BOOST_TEST(lines_in(out).size() == static_cast<std::size_t>(n), out);
  BOOST_TEST(out.find("\"reason\":\"exec exited 3: bug") != std::string::npos, out);
  BOOST_TEST(out.find("\"origin\":\"" + queue_name_of(url) + "/") != std::string::npos, out);
  // A listing cut short gives back what it held: the next sees them all.
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"list", "--limit", "3"}, sets), out, err) == 0);
  BOOST_TEST(lines_in(out).size() == 3u);
  auto ids = listed_ids(url, dlq, sets);
  BOOST_REQUIRE_EQUAL(ids.size(), static_cast<std::size_t>(n));
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"show", ids.front()}, sets), out, err) == 0, err);
  auto shown = nlohmann::json::parse(out);
  BOOST_TEST(shown.at("key").get<std::string>().rfind("i-", 0) == 0, out);
  BOOST_TEST(shown.at("payload").get<std::string>().find("\"n\":") != std::string::npos, out);
  BOOST_TEST(shown.at("headers").at("idem") == shown.at("key"), out);
  BOOST_TEST(shown.at("errors").is_array(), out); // the final error is the reason
  BOOST_TEST(shown.at("attempts") == 1, out);
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"show", "no-such-id"}, sets), out, err) == 1);
  BOOST_TEST(err.find("no record no-such-id") != std::string::npos, err);

  // The dry run changes nothing; the bug fixed, each replay is handled once
  // (the dead-letter left its key done in Redis: the replay has a key of
  // its own, and clears the old one).
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"replay", "--all", "--dry-run"}, sets), out, err) ==
             0);
  BOOST_TEST(lines_in(out).size() == static_cast<std::size_t>(n));
  BOOST_TEST(held_by(url) == 0);
  BOOST_TEST(held_by(dlq) == n);
  std::remove(flag.c_str());
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"replay", "--all"}, sets), out, err) == 0, err);
  BOOST_TEST(err.find("replayed 10 of SQS queue " + dlq) != std::string::npos, err);
  BOOST_TEST(held_by(dlq) == 0);
  std::set<std::string> replay_of;
  for (auto& m : boto3({"receive", url, "--max", "10", "--wait", "1", "--visibility", "1"})) {
    const auto& a = m.at("MessageAttributes");
    BOOST_TEST(a.at("mailroom.replayed").get<std::string>() == "1");
    BOOST_TEST(a.at("idem").get<std::string>().rfind("i-", 0) == 0); // its own attributes kept
    BOOST_TEST(!a.contains("mailroom.reason"));
    replay_of.insert(a.at("mailroom.replay_of").get<std::string>());
  }
  BOOST_TEST(replay_of == std::set<std::string>(ids.begin(), ids.end()));
  {
    process_runner run{sqs_run(url, dlq, sets)};
    BOOST_REQUIRE_MESSAGE(
        eventually([&] { return lines_in(file_text(mark)).size() >= n && held_by(url) == 0; },
                   60s, 100ms),
        run.err());
    stop(run);
    BOOST_TEST(summary_value(run.out(), "acked") == n);
    BOOST_TEST(summary_value(run.out(), "of which duplicates") == 0);
    BOOST_TEST(summary_value(run.out(), "dead-lettered") == 0);
  }
  auto keys = lines_in(file_text(mark));
  BOOST_TEST(keys.size() == static_cast<std::size_t>(n));
  for (const auto& key : keys) {
    BOOST_TEST(key.find("/replay/1") != std::string::npos, key); // the replay's own key
  }
  std::remove(mark.c_str());
}

BOOST_AUTO_TEST_CASE(purge_takes_only_what_its_filters_name_and_only_with_yes) {
  auto url = create_queue(unique_name("purge"));
  auto dlq = create_queue(unique_name("purge-dlq"));
  park(dlq, url, 3, "exec exited 3: bug", "b");
  park(dlq, url, 2, "timeout", "t");
  std::string out, err;
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"purge", "--reason", "^exec"}), out, err) == 2);
  BOOST_TEST(lines_in(out).size() == 3u, out); // what it would purge
  BOOST_TEST(listed_ids(url, dlq).size() == 5u);
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"purge", "--reason", "^exec", "--yes"}), out, err) ==
                 0, err);
  BOOST_TEST(err.find("purged 3 of") != std::string::npos, err);
  auto left = listed_ids(url, dlq);
  BOOST_REQUIRE_EQUAL(left.size(), 2u);
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"list"}), out, err) == 0);
  BOOST_TEST(out.find("exec exited") == std::string::npos, out);
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"purge", "--id", left.front(), "--yes"}), out, err) ==
                 0, err);
  BOOST_TEST(listed_ids(url, dlq) == std::vector<std::string>{left.back()});
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"show", left.back()}), out, err) == 0, err);
  auto shown = nlohmann::json::parse(out);
  BOOST_TEST(shown.at("errors") == nlohmann::json::parse("[\"e1\"]"), out);
  BOOST_TEST(shown.at("attempts") == 3, out);
  BOOST_TEST(shown.at("origin").get<std::string>().rfind(queue_name_of(url) + "/src-t-", 0) == 0,
             out);
  BOOST_TEST(shown.at("key").get<std::string>().rfind("t-", 0) == 0, out);
  BOOST_TEST(shown.at("headers").at("trace") == "t-1", out);
  BOOST_TEST(shown.at("dead_lettered_at") == "2026-11-30T00:53:20Z", out);
  BOOST_TEST(held_by(url) == 0); // purge never writes back
  BOOST_TEST(held_by(dlq) == 1);
}

// Without transport.sqs.dlq_queue_url, the DLQ is the queue's redrive
// target, and its records are the messages as SQS moved them.
BOOST_AUTO_TEST_CASE(records_moved_by_a_redrive_policy_are_listed_and_replayed) {
  auto dlq = create_queue(unique_name("rd-dlq"));
  auto arn = client().get_queue_attributes(dlq).value.queue_arn;
  BOOST_REQUIRE(!arn.empty());
  nlohmann::json policy = {{"deadLetterTargetArn", arn}, {"maxReceiveCount", "1"}};
  auto url = create_queue(unique_name("rd"), 30, {{"RedrivePolicy", policy.dump()}});
  send_with(url, "{\"a\":1}", {{"trace", {"String", "x-1", {}}}});
  send_with(url, "{\"a\":2}", {{"trace", {"String", "x-2", {}}}});
  auto api = client();
  BOOST_REQUIRE(eventually(
      [&] {
        sqs_receive_request rq;
        rq.queue_url = url;
        rq.wait_time_s = 0;
        rq.visibility_timeout_s = 0; // received and given back: once past 1, moved
        (void)api.receive_message(rq);
        return held_by(dlq) == 2;
      },
      30s, 100ms));
  std::string out, err;
  BOOST_TEST(run_to_end(dlq_args(url, "", {"list", "--json"}), out, err) == 0, err);
  BOOST_TEST(lines_in(out).size() == 2u, out);
  BOOST_TEST(out.find("\"reason\":\"moved by the redrive policy of " + queue_name_of(url)) !=
                 std::string::npos, out);
  BOOST_TEST(err.find("the redrive target of " + queue_name_of(url)) != std::string::npos, err);
  BOOST_TEST(run_to_end(dlq_args(url, "", {"replay", "--all"}), out, err) == 0, err);
  BOOST_TEST(err.find("replayed 2 of") != std::string::npos, err);
  BOOST_TEST(held_by(dlq) == 0);
  std::set<std::string> traces;
  for (auto& m : boto3({"receive", url, "--max", "2", "--wait", "1", "--visibility", "1"})) {
    traces.insert(m.at("MessageAttributes").at("trace").get<std::string>());
    BOOST_TEST(m.at("MessageAttributes").at("mailroom.replayed").get<std::string>() == "1");
  }
  BOOST_TEST(traces == (std::set<std::string>{"x-1", "x-2"}));
}

// A replay while the bug is still there: the consumer parks each replayed
// message again within milliseconds, inside the command's receive wait. The
// command does not chase those: it ends, each record replayed once.
BOOST_AUTO_TEST_CASE(a_replay_does_not_chase_the_records_it_parks_again) {
  auto url = create_queue(unique_name("again"));
  auto dlq = create_queue(unique_name("again-dlq"));
  park(dlq, url, 5, "exec exited 3: bug", "a");
  auto flag = temp_file("again-bug"), mark = temp_file("again-mark");
  std::ofstream{flag} << "still there\n";
  std::vector<std::string> sets{"retry.max_attempts=1"};
  auto handler = exec_handler(flag, mark);
  sets.insert(sets.end(), handler.begin(), handler.end());
  process_runner run{sqs_run(url, dlq, sets)};
  BOOST_REQUIRE_MESSAGE(
      eventually([&] { return run.err().find("consuming SQS queue") != std::string::npos; },
                 30s, 50ms),
      run.err());
  std::string out, err;
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"replay", "--all"}), out, err) == 0, err);
  BOOST_TEST(err.find("replayed 5 of") != std::string::npos, err);
  BOOST_REQUIRE_MESSAGE(eventually([&] { return held_by(dlq) == 5 && held_by(url) == 0; }, 30s,
                                   100ms),
                        run.err());
  stop(run);
  BOOST_TEST(summary_value(run.out(), "dead-lettered") == 5);
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"list", "--json"}), out, err) == 0, err);
  auto lines = lines_in(out);
  BOOST_TEST(lines.size() == 5u, out);
  for (const auto& line : lines) {
    BOOST_TEST(nlohmann::json::parse(line).at("replays") == 1, line); // replayed once
  }
  std::remove(flag.c_str());
  std::remove(mark.c_str());
}

BOOST_AUTO_TEST_CASE(bad_requests_are_named_and_unreachable_servers_exit_1) {
  auto url = create_queue(unique_name("bad"));
  auto dlq = create_queue(unique_name("bad-dlq"));
  std::string out, err;
  auto missing = server().queue_url(unique_name("missing"));
  BOOST_TEST(run_to_end(dlq_args(url, missing, {"list"}), out, err) == 1);
  BOOST_TEST(err.find("dead-letter queue " + missing) != std::string::npos, err);
  BOOST_TEST(err.find("QueueDoesNotExist") != std::string::npos, err);
  // No dlq_queue_url and no redrive policy: there is nothing to read.
  BOOST_TEST(run_to_end(dlq_args(url, "", {"list"}), out, err) == 1);
  BOOST_TEST(err.find("has no redrive policy") != std::string::npos, err);
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"replay"}), out, err) == 2);
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"show", "not-an-id"}), out, err) == 1);
  BOOST_TEST(err.find("no record not-an-id") != std::string::npos, err);
  // A record without its origin cannot go back: said, nothing changed, and
  // it is visible again for the next command.
  send_with(dlq, "{}", {{"mailroom.reason", {"String", "odd", {}}}});
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"replay", "--all"}), out, err) == 1);
  BOOST_TEST(err.find("does not say where it came from") != std::string::npos, err);
  BOOST_TEST(listed_ids(url, dlq).size() == 1u);
  BOOST_TEST(held_by(url) == 0);
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"list"},
                                 {"transport.sqs.endpoint_url=\"http://127.0.0.1:1\""}),
                        out, err) == 1);
  BOOST_TEST(err.find("mailroom dlq: sqs dlq (http://127.0.0.1:1)") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(a_replay_killed_half_way_loses_nothing_and_is_handled_once) {
  constexpr int n = 1000;
  auto url = create_queue(unique_name("kill"));
  auto dlq = create_queue(unique_name("kill-dlq"));
  park(dlq, url, n, "exec exited 3: bug", "k");
  const auto parked = listed_ids(url, dlq);
  BOOST_REQUIRE_EQUAL(parked.size(), static_cast<std::size_t>(n));
  // Held records come back 2 s after a kill.
  const std::vector<std::string> hold{"transport.sqs.visibility_timeout_s=2",
                                      "transport.sqs.heartbeat_interval_s=0"};
  {
    process_runner replay{dlq_args(url, dlq, {"replay", "--all"}, hold)};
    BOOST_REQUIRE(eventually([&] { return held_by(url) >= 300; }, 60s, 20ms));
    replay.signal(SIGKILL);
    replay.wait(10s);
  }
  std::this_thread::sleep_for(3s);
  // Each record in the DLQ or replayed; one cut between its copy and its
  // delete in both.
  auto in_source = held_by(url), in_dlq = held_by(dlq);
  BOOST_TEST_MESSAGE("killed with " << in_dlq << " of " << n << " left");
  BOOST_TEST(in_source + in_dlq >= n);
  BOOST_TEST(in_source + in_dlq <= n + 1);
  BOOST_TEST(in_dlq > 0);
  std::string out, err;
  auto began = std::chrono::steady_clock::now();
  BOOST_TEST(run_to_end(dlq_args(url, dlq, {"replay", "--all"}, hold), out, err) == 0, err);
  BOOST_TEST_MESSAGE("replayed the rest in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - began).count() << " ms");
  BOOST_TEST(held_by(dlq) == 0);
  auto copies = held_by(url);
  BOOST_TEST(copies >= n);
  BOOST_TEST(copies <= n + 1);
  // Handled once each: a second copy shares its replay's key.
  auto mark = temp_file("kill-mark");
  {
    std::vector<std::string> sets{"engine.workers=4"};
    auto handler = exec_handler(temp_file("no-bug"), mark);
    sets.insert(sets.end(), handler.begin(), handler.end());
    process_runner run{sqs_run(url, dlq, sets)};
    BOOST_REQUIRE_MESSAGE(eventually([&] { return held_by(url) == 0; }, 120s, 200ms), run.err());
    stop(run);
    BOOST_TEST(summary_value(run.out(), "acked") == copies);
    BOOST_TEST(summary_value(run.out(), "of which duplicates") == copies - n);
  }
  std::set<std::string> expected;
  for (const auto& id : parked) {
    expected.insert(id + "/replay/1");
  }
  auto keys = lines_in(file_text(mark));
  BOOST_TEST(keys.size() == static_cast<std::size_t>(n));
  BOOST_TEST(std::set<std::string>(keys.begin(), keys.end()) == expected);
  std::remove(mark.c_str());
}
