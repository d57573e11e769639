#define BOOST_TEST_MODULE cli_redis_dlq
#include <boost/test/unit_test.hpp>

// `mailroom dlq` on the Redis Streams transport against a real redis-server:
// list, show, replay after the bug is fixed (not deduped away), purge with
// filters and --yes, and a replay killed half-way.

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "clients/redis/redis_connection.hpp"
#include "tests/support/cli_redis.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/redis_server.hpp"

using namespace mailroom::testing;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> dlq_args(int port, std::vector<std::string> words,
                                  std::vector<std::string> sets = {}) {
  auto args = mailroom_args("redis-streams.toml", port, std::move(sets), "dlq");
  args.insert(args.begin() + 2, words.begin(), words.end());
  return args;
}

// Runs `args` to its end; returns the exit code, stdout in `out`, stderr in `err`.
int run_to_end(std::vector<std::string> args, std::string& out, std::string& err) {
  process_runner p{std::move(args)};
  int rc = p.wait(60s);
  out = p.out();
  err = p.err();
  return rc;
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

std::string temp_file(const std::string& stem) {
  return "/tmp/mailroom-dlq-" + std::to_string(::getpid()) + "-" + stem;
}

// A wait for a running process or Redis: checked every 20 ms.
template <class Pred> bool eventually_true(Pred f, std::chrono::milliseconds limit) {
  return eventually(f, limit, 20ms);
}

// The values of field `name` of every entry of `stream`.
std::vector<std::string> field_values(mailroom::redis_connection& admin,
                                      const std::string& stream, const std::string& name) {
  std::vector<std::string> out;
  auto r = admin.command({"XRANGE", stream, "-", "+"});
  BOOST_REQUIRE(static_cast<bool>(r));
  const auto* entries = r.replies[0].get();
  for (std::size_t i = 0; i < entries->elements; ++i) {
    const auto* fields = entries->element[i]->element[1];
    for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
      if (std::string{fields->element[f]->str, fields->element[f]->len} == name) {
        out.emplace_back(fields->element[f + 1]->str, fields->element[f + 1]->len);
      }
    }
  }
  return out;
}

std::vector<std::string> entry_ids(mailroom::redis_connection& admin, const std::string& stream) {
  std::vector<std::string> out;
  auto r = admin.command({"XRANGE", stream, "-", "+"});
  BOOST_REQUIRE(static_cast<bool>(r));
  for (std::size_t i = 0; i < r.replies[0]->elements; ++i) {
    const auto* id = r.replies[0]->element[i]->element[0];
    out.emplace_back(id->str, id->len);
  }
  return out;
}

// Parks `n` records of reason `reason` straight into the dead-letter stream,
// as the transport writes them.
void park(mailroom::redis_connection& admin, int n, const std::string& reason,
          const std::string& tag) {
  constexpr int chunk = 1000;
  for (int from = 0; from < n; from += chunk) {
    std::vector<mailroom::redis_command> cmds;
    for (int i = from; i < std::min(n, from + chunk); ++i) {
      auto key = tag + "-" + std::to_string(i);
      cmds.push_back({"XADD", "orders:dlq", "*", "payload", "{\"n\":" + std::to_string(i) + "}",
                      "reason", reason, "attempts", "3", "errors", "[]", "origin",
                      "orders/0-" + std::to_string(i + 1), "entry_id",
                      "0-" + std::to_string(i + 1), "key", key, "dead_lettered_at_ms",
                      "1796000000000", "header:key", key});
    }
    BOOST_REQUIRE(static_cast<bool>(admin.pipeline(cmds)));
  }
}

} // namespace

BOOST_AUTO_TEST_CASE(records_of_a_fixed_bug_are_listed_shown_replayed_and_handled_once) {
  constexpr int n = 30;
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  for (int i = 0; i < n; ++i) {
    run(admin, {"XADD", "orders", "*", "key", "k-" + std::to_string(i), "payload",
                "{\"n\":" + std::to_string(i) + "}"});
  }
  auto flag = temp_file("bug"), mark = temp_file("mark");
  std::ofstream{flag} << "the bug\n";
  auto handler = std::vector<std::string>{
      "handler.type=\"exec\"",
      "handler.command=[\"/bin/sh\", \"-c\", \"if [ -e " + flag + " ]; then echo bug >&2; "
      "exit 3; fi; echo $MAILROOM_MESSAGE_ID >> " + mark + "\"]"};
  {
    process_runner run{mailroom_args("redis-streams.toml", server.port(), handler)};
    BOOST_REQUIRE(eventually_true([&] { return integer_of(admin, {"XLEN", "orders:dlq"}) == n; },
                                  60s));
    run.signal(SIGTERM);
    BOOST_REQUIRE(run.wait(15s) == 0);
  }
  std::string out, err;
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"list", "--json"}), out, err) == 0, err);
  BOOST_TEST(lines_in(out).size() == static_cast<std::size_t>(n));
  BOOST_TEST(out.find("\"reason\":\"exec exited 3: bug") != std::string::npos, out);
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"list", "--limit", "5"}), out, err) == 0);
  BOOST_TEST(lines_in(out).size() == 5u);
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"list", "--reason", "^nothing like it"}), out,
                        err) == 0);
  BOOST_TEST(lines_in(out).empty());
  auto first = entry_ids(admin, "orders:dlq").front();
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"show", first}), out, err) == 0, err);
  // Parked in the order the workers failed them: any of the thirty.
  BOOST_TEST(out.find("\"payload\": \"{\\\"n\\\":") != std::string::npos, out);
  BOOST_TEST(out.find("\"key\": \"k-") != std::string::npos, out);
  BOOST_TEST(out.find("\"reason\": \"exec exited 3: bug") != std::string::npos, out);
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"show", "1-1"}), out, err) == 1);
  BOOST_TEST(err.find("no record 1-1") != std::string::npos, err);

  // The dry run changes nothing; the bug fixed, the replay is handled once
  // each (the dead-letter left the keys done: replay cleared them).
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"replay", "--all", "--dry-run"}), out, err) ==
             0);
  BOOST_TEST(lines_in(out).size() == static_cast<std::size_t>(n));
  BOOST_TEST(integer_of(admin, {"XLEN", "orders:dlq"}) == n);
  std::remove(flag.c_str());
  // Keys another delivery left done (a duplicate that succeeded before the
  // bug): a replay must not be deduped away by them.
  for (int i = 0; i < n; i += 3) {
    run(admin, {"SET", "mailroom:idem:consume:orders:k-" + std::to_string(i), "done:1:"});
  }
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"replay", "--all"}), out, err) == 0, err);
  BOOST_TEST(err.find("replayed 30 of") != std::string::npos, err);
  BOOST_TEST(integer_of(admin, {"XLEN", "orders:dlq"}) == 0);
  BOOST_TEST(integer_of(admin, {"XLEN", "orders"}) == 2 * n);
  auto counts = field_values(admin, "orders", "mailroom.replayed");
  BOOST_TEST(counts.size() == static_cast<std::size_t>(n));
  BOOST_TEST(counts.front() == "1");
  {
    process_runner run{mailroom_args("redis-streams.toml", server.port(), handler)};
    BOOST_REQUIRE_MESSAGE(eventually_true([&] { return lines_in(file_text(mark)).size() >= n; }, 60s),
                          run.err());
    std::this_thread::sleep_for(500ms);
    run.signal(SIGTERM);
    BOOST_REQUIRE(run.wait(15s) == 0);
    BOOST_TEST(summary_value(run.out(), "acked") == n);
    BOOST_TEST(summary_value(run.out(), "of which duplicates") == 0);
  }
  BOOST_TEST(lines_in(file_text(mark)).size() == static_cast<std::size_t>(n));
  BOOST_TEST(integer_of(admin, {"XLEN", "orders:dlq"}) == 0);
  BOOST_TEST(done_keys(admin) == n);
  std::remove(mark.c_str());
}

BOOST_AUTO_TEST_CASE(purge_takes_only_what_its_filters_name_and_only_with_yes) {
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  park(admin, 3, "exec exited 3: a", "a");
  park(admin, 2, "timeout", "b");
  std::string out, err;
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"purge", "--reason", "^exec"}), out, err) == 2);
  BOOST_TEST(err.find("nothing removed without --yes") != std::string::npos, err);
  BOOST_TEST(integer_of(admin, {"XLEN", "orders:dlq"}) == 5);
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"purge", "--reason", "^exec", "--yes"}), out,
                        err) == 0, err);
  BOOST_TEST(integer_of(admin, {"XLEN", "orders:dlq"}) == 2);
  BOOST_TEST(field_values(admin, "orders:dlq", "reason") ==
             (std::vector<std::string>{"timeout", "timeout"}));
  // --since: those two were parked at 1796000000000; one parked a minute ago
  // is the only one of the last hour.
  auto recent = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count() -
                               60000);
  run(admin, {"XADD", "orders:dlq", "*", "payload", "{}", "reason", "recent", "attempts", "1",
              "key", "r-1", "dead_lettered_at_ms", recent});
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"list", "--since", "1h"}), out, err) == 0);
  BOOST_TEST(lines_in(out).size() == 1u, out);
  BOOST_TEST(out.find("recent") != std::string::npos, out);
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"purge", "--since", "1h", "--yes"}), out,
                        err) == 0);
  BOOST_TEST(integer_of(admin, {"XLEN", "orders:dlq"}) == 2);
  BOOST_TEST(field_values(admin, "orders:dlq", "reason") ==
             (std::vector<std::string>{"timeout", "timeout"}));
  auto id = entry_ids(admin, "orders:dlq").front();
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"purge", "--id", id, "--yes"}), out, err) == 0);
  BOOST_TEST(integer_of(admin, {"XLEN", "orders:dlq"}) == 1);
  BOOST_TEST(integer_of(admin, {"XLEN", "orders"}) == 0); // purge never writes back
}

BOOST_AUTO_TEST_CASE(bad_requests_exit_2_and_an_unreachable_redis_exits_1) {
  redis_server server;
  std::string out, err;
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"replay"}), out, err) == 2);
  BOOST_TEST(err.find("say which records") != std::string::npos, err);
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"list", "--reason", "(unclosed"}), out, err) ==
             2);
  BOOST_TEST(err.find("--reason") != std::string::npos, err);
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"list", "--since", "yesterday"}), out, err) ==
             2);
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"lst"}), out, err) == 2);
  // The memory transport's DLQ lives in its process: nothing to reach.
  BOOST_TEST(run_to_end({MAILROOM_BINARY, "dlq", "list", "--config",
                         std::string{MAILROOM_SOURCE_DIR} + "/config/default.toml"},
                        out, err) == 2);
  BOOST_TEST(err.find("memory transport has no dead-letter destination") != std::string::npos,
             err);
  int port = server.port();
  server.stop();
  BOOST_TEST(run_to_end(dlq_args(port, {"list"}), out, err) == 1);
  BOOST_TEST(err.find("cannot reach Redis") != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(a_replay_killed_half_way_leaves_each_record_in_exactly_one_place) {
  constexpr int n = 50000;
  redis_server server;
  mailroom::redis_connection admin{admin_settings(server)};
  park(admin, n, "exec exited 3: bug", "k");
  const auto parked = entry_ids(admin, "orders:dlq");
  BOOST_REQUIRE(parked.size() == static_cast<std::size_t>(n));
  {
    process_runner replay{dlq_args(server.port(), {"replay", "--all"})};
    BOOST_REQUIRE(eventually_true([&] { return integer_of(admin, {"XLEN", "orders"}) >= 500; },
                                  30s));
    replay.signal(SIGKILL);
    replay.wait(10s);
  }
  auto left = integer_of(admin, {"XLEN", "orders:dlq"});
  auto replayed = integer_of(admin, {"XLEN", "orders"});
  BOOST_TEST_MESSAGE("killed after " << replayed << " of " << n);
  BOOST_REQUIRE(left > 0); // it was cut short
  BOOST_TEST(left + replayed == n); // none lost, none in both places
  auto check_once = [&] {
    std::set<std::string> seen;
    for (const auto& id : entry_ids(admin, "orders:dlq")) {
      seen.insert(id);
    }
    for (const auto& of : field_values(admin, "orders", "mailroom.replay_of")) {
      BOOST_CHECK_MESSAGE(seen.insert(of).second, "record " << of << " in two places");
    }
    BOOST_TEST(seen == std::set<std::string>(parked.begin(), parked.end()));
  };
  check_once();
  // Run again: the rest goes, nothing twice.
  std::string out, err;
  BOOST_TEST(run_to_end(dlq_args(server.port(), {"replay", "--all"}), out, err) == 0, err);
  BOOST_TEST(integer_of(admin, {"XLEN", "orders:dlq"}) == 0);
  BOOST_TEST(integer_of(admin, {"XLEN", "orders"}) == n);
  check_once();
}
