#define BOOST_TEST_MODULE cli
#include <boost/test/unit_test.hpp>

#include <regex>

#include <nlohmann/json.hpp>
#include <sstream>

#include <sys/stat.h>

#include "tests/support/process_runner.hpp"

using namespace mailroom::testing;
using namespace std::chrono_literals;

namespace {

const std::string binary = MAILROOM_BINARY;
const std::string default_config =
    std::string{MAILROOM_SOURCE_DIR} + "/config/default.toml";

std::vector<std::string> run_args(std::vector<std::string> sets) {
  std::vector<std::string> args{binary, "run", "--config", default_config};
  for (auto& s : sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  return args;
}

} // namespace

BOOST_AUTO_TEST_CASE(demo_run_settles_every_message_and_prints_progress_and_summary) {
  process_runner p{run_args({"source.messages=50000", "progress.interval_ms=100",
                             "source.poison_ratio=0.01", "source.flaky_ratio=0.02",
                             "source.duplicate_ratio=0.1", "log.level=warn"})};
  BOOST_REQUIRE(p.wait(60s) == 0);
  auto out = p.out();
  BOOST_TEST(out.find("mailroom run summary") != std::string::npos);
  auto acked = summary_value(out, "acked");
  auto dead = summary_value(out, "dead-lettered");
  auto dups = summary_value(out, "of which duplicates");
  auto retried = summary_value(out, "retried");
  BOOST_TEST(acked + dead == 50000);
  BOOST_TEST(summary_value(out, "DLQ holds") == dead);
  // 1 % poison, roughly; every poison message is dead-lettered on attempt 1.
  BOOST_TEST(dead > 300);
  BOOST_TEST(dead < 700);
  BOOST_TEST(dups > 3000);
  BOOST_TEST(retried > 600);
  BOOST_TEST(summary_value(out, "latency p99 (us)") >= 0);
  BOOST_TEST(out.find("peak RSS") != std::string::npos);
  BOOST_TEST(p.err().find("settled") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sigterm_drains_and_exits_zero) {
  process_runner p{
      run_args({"source.messages=1000000", "handler.latency_us=2000", "engine.workers=8",
                "engine.drain_timeout_ms=1000", "log.level=info"})};
  std::this_thread::sleep_for(1500ms);
  auto t0 = std::chrono::steady_clock::now();
  p.signal(SIGTERM);
  int rc = p.wait(15s);
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(rc == 0);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(took).count() < 6000);
  BOOST_TEST(p.err().find("draining") != std::string::npos);
  BOOST_TEST(summary_value(p.out(), "acked") > 0);
}

BOOST_AUTO_TEST_CASE(a_second_signal_exits_at_once) {
  process_runner p{
      run_args({"source.messages=100000", "handler.latency_us=20000000",
                "engine.handler_timeout_ms=60000", "dedupe.claim_ttl_ms=120000",
                "sweeper.stale_cutoff_ms=120000", "engine.drain_timeout_ms=60000"})};
  std::this_thread::sleep_for(1000ms);
  auto t0 = std::chrono::steady_clock::now();
  p.signal(SIGINT);
  std::this_thread::sleep_for(300ms);
  p.signal(SIGINT);
  int rc = p.wait(10s);
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(rc == 130);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(took).count() < 3000);
  BOOST_TEST(p.err().find("second signal") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(exec_handler_three_exit_paths_end_to_end) {
  // Ids ending in 0 exit 3 (dead-letter), ids ending in 1 exit 75 on their
  // first attempt (retry), everything else exits 0.
  std::string script =
      "cat > /dev/null; case \"$MAILROOM_MESSAGE_ID\" in *0) echo bad >&2; exit 3;; "
      "*1) [ \"$MAILROOM_ATTEMPT\" = 1 ] && exit 75; exit 0;; *) exit 0;; esac";
  auto path = "/tmp/mailroom-exec-" + std::to_string(getpid()) + ".toml";
  {
    std::ofstream f{path};
    f << "[transport]\ntype = \"memory\"\n"
      << "[source]\nmessages = 30\nduplicate_ratio = 0.0\npoison_ratio = 0.0\n"
         "flaky_ratio = 0.0\n[handler]\ntype = \"exec\"\ncommand = [\"/bin/sh\", \"-c\", "
      << "\"" << std::regex_replace(script, std::regex{"\""}, "\\\"") << "\"]\n"
      << "[retry]\nbase_ms = 1\ncap_ms = 5\nmax_attempts = 3\n[progress]\nenabled = "
         "false\n";
  }
  process_runner p{{binary, "run", "--config", path}};
  int rc = p.wait(60s);
  std::remove(path.c_str());
  BOOST_REQUIRE(rc == 0);
  auto out = p.out();
  BOOST_TEST(summary_value(out, "dead-lettered") == 3);
  BOOST_TEST(summary_value(out, "retried") == 3);
  BOOST_TEST(summary_value(out, "acked") == 27);
  BOOST_TEST(p.err().find("exec exited 3: bad") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(exec_processes_run_one_per_worker_at_once) {
  // The reproduction: 8 messages, `sleep 1` each, 8 workers. One poll
  // batch used to run on one lane, one process after another (8 s).
  process_runner p{{binary, "run", "--config",
                    std::string{MAILROOM_SOURCE_DIR} + "/config/memory-exec.toml", "--set",
                    "source.messages=8", "--set", "source.duplicate_ratio=0", "--set",
                    "handlers.audit.type=exec", "--set",
                    "handlers.audit.command=[\"/bin/sh\",\"-c\",\"sleep 1\"]", "--set",
                    "handler.command=[\"/bin/sh\",\"-c\",\"sleep 1\"]", "--set",
                    "log.level=warn"}};
  auto t0 = std::chrono::steady_clock::now();
  BOOST_REQUIRE(p.wait(30s) == 0);
  auto took = std::chrono::steady_clock::now() - t0;
  auto out = p.out();
  BOOST_TEST(summary_value(out, "acked") == 8);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(took).count() < 4000);
  BOOST_TEST(summary_value(out, "latency p50 (us)") < 2000000);
}

BOOST_AUTO_TEST_CASE(bad_config_exits_two_naming_the_key) {
  process_runner p{run_args({"engine.max_in_flight=-5"})};
  BOOST_TEST(p.wait(10s) == 2);
  BOOST_TEST(p.err().find("engine.max_in_flight") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(embed_example_runs_and_settles_everything) {
  process_runner p{{MAILROOM_EMBED_EXAMPLE}};
  BOOST_REQUIRE(p.wait(30s) == 0);
  BOOST_TEST(p.out().find("handled=99 mailed=50 acked=159 deduped=10 dead_lettered=1") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(saga_example_replays_and_compensates) {
  process_runner p{{MAILROOM_SAGA_EXAMPLE}};
  BOOST_REQUIRE_MESSAGE(p.wait(30s) == 0, p.err());
  auto out = p.out();
  // 60 orders: 4 declined cards (dead-lettered, stock released), order 7's
  // mail rejected on all 3 attempts (refunded and released), 4 orders whose
  // first mail failed (reservation and charge replayed, not redone).
  BOOST_TEST(out.find("reserved=60 charged=56 mailed=55 refunded=1 released=5 acked=55 "
                      "dead_lettered=5 replayed=12 compensations=6") != std::string::npos,
             out);
  BOOST_TEST(out.find("dlq order-15: card declined") != std::string::npos, out);
  BOOST_TEST(out.find("dlq order-7: max attempts (3) exhausted; last error: handler threw: "
                      "mail address rejected") != std::string::npos,
             out);
}

BOOST_AUTO_TEST_CASE(exec_batch_runs_a_lambda_style_handler_and_retries_what_it_names) {
  // The script fails, on their first attempt, the records whose id ends in 7:
  // a tenth of them, retried once, then acked.
  auto dir = "/tmp/mailroom-cli-batch-" + std::to_string(getpid());
  ::mkdir(dir.c_str(), 0755);
  auto script = dir + "/handler.py";
  auto calls = dir + "/calls";
  std::ofstream{script} << "import json, os, sys\n"
                           "records = json.load(sys.stdin)\n"
                           "open(sys.argv[1], 'a').write(str(len(records)) + '\\n')\n"
                           "failed = [r['id'] for r in records\n"
                           "          if r['attempt'] == 1 and r['id'].endswith('7')]\n"
                           "print(json.dumps({'batchItemFailures':\n"
                           "                  [{'itemIdentifier': i} for i in failed]}))\n";
  process_runner p{run_args({"source.messages=2000", "source.poison_ratio=0",
                             "source.flaky_ratio=0", "source.duplicate_ratio=0",
                             "handler.type=\"exec_batch\"", "handler.batch_max=50",
                             "handler.command=[\"python3\", \"" + script + "\", \"" + calls +
                                 "\"]",
                             "progress.enabled=false"})};
  BOOST_REQUIRE_MESSAGE(p.wait(120s) == 0, p.err());
  auto out = p.out();
  BOOST_TEST(summary_value(out, "acked") == 2000, out);
  BOOST_TEST(summary_value(out, "retried") == 200, out);
  BOOST_TEST(summary_value(out, "dead-lettered") == 0, out);
  std::ifstream in{calls};
  int n = 0, batches = 0, total = 0, largest = 0;
  while (in >> n) {
    ++batches;
    total += n;
    largest = std::max(largest, n);
  }
  BOOST_TEST(total == 2200); // every record once, the failed ones twice
  BOOST_TEST(largest <= 50);
  BOOST_TEST(batches < 2200 / 5, batches << " calls"); // batched, not one per record
  std::system(("rm -rf '" + dir + "'").c_str());
}

BOOST_AUTO_TEST_CASE(exec_command_typos_are_config_errors) {
  // They used to dead-letter every message and exit 0.
  auto dir = "/tmp/mailroom-cli-exec-" + std::to_string(getpid());
  ::mkdir(dir.c_str(), 0755);
  auto plain = dir + "/not-executable";
  std::ofstream{plain} << "#!/bin/sh\nexit 0\n";
  for (auto [program, why] : {std::pair<std::string, std::string>{"/nonexistent/prog",
                                                                  "No such file"},
                              {plain, "is not executable"},
                              {dir, "is a directory"},
                              {"mailroom-no-such-program", "not found in PATH"}}) {
    for (const char* command : {"validate", "run"}) {
      process_runner p{{binary, command, "--config", default_config, "--set",
                        "handler.type=exec", "--set",
                        "handler.command=[\"" + program + "\"]"}};
      BOOST_TEST(p.wait(10s) == 2, command << " " << program);
      BOOST_TEST(p.err().find("handler.command") != std::string::npos, p.err());
      BOOST_TEST(p.err().find(why) != std::string::npos, p.err());
    }
  }
  std::remove(plain.c_str());
  ::rmdir(dir.c_str());
}

BOOST_AUTO_TEST_CASE(exec_children_do_not_inherit_the_redis_password) {
  auto out = "/tmp/mailroom-cli-env-" + std::to_string(getpid());
  ::setenv("MRPW_CLI_TEST", "topsecret", 1);
  process_runner p{run_args({"source.messages=2", "handler.type=exec",
                             "handler.command=[\"/bin/sh\", \"-c\", \"env >> " + out + "\"]",
                             "redis.password_env=MRPW_CLI_TEST", "log.level=warn"})};
  BOOST_REQUIRE(p.wait(30s) == 0);
  ::unsetenv("MRPW_CLI_TEST");
  std::ifstream in{out};
  std::stringstream env;
  env << in.rdbuf();
  std::remove(out.c_str());
  BOOST_TEST(env.str().find("MAILROOM_TOPIC=") != std::string::npos); // the child ran
  BOOST_TEST(env.str().find("topsecret") == std::string::npos);
  BOOST_TEST(env.str().find("MRPW_CLI_TEST") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(exec_timeouts_are_counted_as_timeouts) {
  process_runner p{run_args({"source.messages=3", "source.duplicate_ratio=0",
                             "source.poison_ratio=0", "source.flaky_ratio=0",
                             "handler.type=exec",
                             "handler.command=[\"/bin/sh\", \"-c\", \"sleep 5\"]",
                             "engine.handler_timeout_ms=300", "retry.max_attempts=1",
                             "log.level=error"})};
  BOOST_REQUIRE(p.wait(30s) == 0);
  auto out = p.out();
  BOOST_TEST(summary_value(out, "handler timeouts") == 3);
  BOOST_TEST(summary_value(out, "dead-lettered") == 3);
}

BOOST_AUTO_TEST_CASE(big_payloads_are_bounded_in_memory) {
  // 20 messages of 64 MiB used 4 GB of RSS; the generator's payloads are
  // now at most 16 MiB and the memory transport holds at most 64 MiB.
  process_runner bad{run_args({"source.payload_bytes=67108864"})};
  BOOST_TEST(bad.wait(10s) == 2);
  BOOST_TEST(bad.err().find("source.payload_bytes") != std::string::npos);
  process_runner p{run_args({"source.messages=20", "source.payload_bytes=16777216",
                             "log.level=warn"})};
  BOOST_REQUIRE(p.wait(60s) == 0);
  auto out = p.out();
  BOOST_TEST(summary_value(out, "acked") + summary_value(out, "dead-lettered") == 20);
  auto rss_line = out.substr(out.find("peak RSS"));
  double mib = std::stod(rss_line.substr(rss_line.find_first_of("0123456789")));
  BOOST_TEST(mib < 1024.0, rss_line.substr(0, rss_line.find('\n')));
}

BOOST_AUTO_TEST_CASE(version_help_and_unknown_subcommands) {
  for (std::vector<std::string> args : {std::vector<std::string>{"--version"}, {"-V"},
                                        {"version"}}) {
    args.insert(args.begin(), binary);
    process_runner p{args};
    BOOST_TEST(p.wait(10s) == 0, args[1]);
    BOOST_TEST(p.out().rfind("mailroom 0.", 0) == 0, p.out());
  }
  process_runner unknown{{binary, "frobnicate"}};
  BOOST_TEST(unknown.wait(10s) == 2);
  BOOST_TEST(unknown.err().find("mailroom: unknown subcommand 'frobnicate'") !=
             std::string::npos);
  process_runner typo{{binary, "valdate"}};
  BOOST_TEST(typo.wait(10s) == 2);
  BOOST_TEST(typo.err().find("did you mean 'validate'?") != std::string::npos, typo.err());
  process_runner bad_flag{{binary, "run", "--bogus"}};
  BOOST_TEST(bad_flag.wait(10s) == 2);
  BOOST_TEST(bad_flag.err().rfind("mailroom: ", 0) == 0, bad_flag.err());
  process_runner help{{binary, "--help"}};
  BOOST_TEST(help.wait(10s) == 0);
  BOOST_TEST(help.out().find("Exit codes: 0") != std::string::npos);
  BOOST_TEST(help.out().find("MAILROOM_LOG_LEVEL") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(validate_shows_the_log_level_in_force) {
  ::setenv("MAILROOM_LOG_LEVEL", "debug", 1);
  process_runner p{{binary, "validate", "--config", default_config}};
  ::unsetenv("MAILROOM_LOG_LEVEL");
  BOOST_REQUIRE(p.wait(10s) == 0);
  BOOST_TEST(p.out().find("MAILROOM_LOG_LEVEL=debug overrides \"info\"") !=
             std::string::npos);
  BOOST_TEST(p.out().find("level = \"debug\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(json_logs_make_progress_and_summary_json_too) {
  process_runner p{run_args({"source.messages=20000", "log.format=json",
                             "progress.interval_ms=50"})};
  BOOST_REQUIRE(p.wait(60s) == 0);
  auto summary = nlohmann::json::parse(p.out());
  BOOST_TEST(summary["msg"] == "summary");
  BOOST_TEST(summary["acked"].get<long long>() + summary["dead_lettered"].get<long long>() ==
             20000);
  std::istringstream err{p.err()};
  std::string line;
  int progress = 0, dead_letters = 0;
  while (std::getline(err, line)) {
    auto j = nlohmann::json::parse(line); // every stderr line is JSON
    progress += j["msg"] == "progress" ? 1 : 0;
    if (j["msg"] == "dead-lettered") {
      ++dead_letters;
      BOOST_TEST(j.contains("id"));
      BOOST_TEST(j["topic"].is_string());
    }
  }
  BOOST_TEST(progress >= 1);
  BOOST_TEST(dead_letters >= 1);
}

BOOST_AUTO_TEST_CASE(an_idle_run_prints_a_heartbeat_not_a_line_per_interval) {
  // Nothing to do for 1.5 s (no messages): one line, then silence until the
  // heartbeat; a line per 50 ms interval before.
  process_runner p{run_args({"source.messages=0", "engine.stop_when_exhausted=false",
                             "progress.interval_ms=50", "progress.heartbeat_ms=1000"})};
  std::this_thread::sleep_for(1500ms);
  p.signal(SIGTERM);
  BOOST_REQUIRE(p.wait(10s) == 0);
  std::istringstream err{p.err()};
  std::string line;
  int lines = 0;
  while (std::getline(err, line)) {
    lines += line.find("] settled ") != std::string::npos ? 1 : 0;
  }
  BOOST_TEST(lines >= 1);
  BOOST_TEST(lines <= 3); // 30 with a line per interval
}

BOOST_AUTO_TEST_CASE(dead_letters_are_warnings_and_a_burst_is_summarised) {
  // At log level warn (the examples' level) every dead-letter used to be
  // invisible (logged at info), and at info the demo printed one per poison
  // message.
  process_runner p{run_args({"source.messages=100000", "source.poison_ratio=0.01",
                             "log.level=warn", "progress.enabled=false"})};
  BOOST_REQUIRE(p.wait(60s) == 0);
  auto dead = summary_value(p.out(), "dead-lettered");
  BOOST_TEST(dead > 500);
  std::istringstream err{p.err()};
  std::string line;
  int one_by_one = 0, summaries = 0;
  while (std::getline(err, line)) {
    if (line.find("[warning] dead-lettered (id=") != std::string::npos) {
      ++one_by_one;
      BOOST_TEST(line.find("topic=") != std::string::npos);
      BOOST_TEST(line.find("attempts=") != std::string::npos);
      BOOST_TEST(line.find("reason=") != std::string::npos);
    }
    summaries += line.find("more messages not logged one by one") != std::string::npos;
  }
  BOOST_TEST(one_by_one >= 1);
  BOOST_TEST(one_by_one <= 60); // 20 per 5 s window
  BOOST_TEST(summaries >= 1);
}

BOOST_AUTO_TEST_CASE(an_empty_config_file_does_not_start_the_demo) {
  auto path = "/tmp/mailroom-empty-" + std::to_string(getpid()) + ".toml";
  std::ofstream{path} << "";
  process_runner p{{binary, "run", "--config", path}};
  BOOST_TEST(p.wait(10s) == 2);
  std::remove(path.c_str());
  BOOST_TEST(p.err().find("transport.type") != std::string::npos, p.err());
  BOOST_TEST(p.out().find("mailroom run summary") == std::string::npos);
}
