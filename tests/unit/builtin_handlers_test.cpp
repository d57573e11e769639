#define BOOST_TEST_MODULE builtin_handlers
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <sys/stat.h>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "app/builtin_handlers.hpp"

using namespace std::chrono_literals;
using steady = mailroom::clock;
using mailroom::envelope;
using mailroom::handler_context;
using mailroom::outcome;

namespace {

// Orphans of the commands (backgrounded sleeps) are reparented to this
// process, so the tests can see them die and reap them.
struct subreaper_fixture {
  subreaper_fixture() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
};

struct temp_dir {
  temp_dir() {
    char tmpl[] = "/tmp/mailroom_bh_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::string path;
};

envelope make_msg(std::string payload, std::string key = "k-1") {
  envelope m;
  m.id = "id-42";
  m.key = std::move(key);
  m.topic = "orders";
  m.payload = std::move(payload);
  return m;
}

handler_context make_ctx(std::chrono::milliseconds budget = 10s,
                         std::uint32_t attempt = 1) {
  handler_context ctx;
  ctx.deadline = steady::now() + budget;
  ctx.attempt = attempt;
  return ctx;
}

mailroom::handler_fn sh(const std::string& script, std::size_t max_output = 65536) {
  mailroom::exec_settings s;
  s.command = {"/bin/sh", "-c", script};
  s.max_output_bytes = max_output;
  return mailroom::make_exec_handler(std::move(s));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int open_fd_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) {
      ++n;
    }
    ::closedir(d);
  }
  return n;
}

// Waits for an orphan (reparented to us) to die and reaps it.
bool orphan_dies(pid_t pid, std::chrono::milliseconds within) {
  auto until = steady::now() + within;
  while (steady::now() < until) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r == -1 && errno == ECHILD && ::kill(pid, 0) == -1)) {
      return true;
    }
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

bool group_gone(pid_t pgid) {
  return ::kill(-pgid, 0) == -1 && errno == ESRCH;
}

// Reaps every orphan handed to us until the group is gone.
bool group_dies(pid_t pgid, std::chrono::milliseconds within) {
  auto until = steady::now() + within;
  while (steady::now() < until) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (group_gone(pgid)) {
      return true;
    }
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// Reaps orphans left by earlier tests until none is left, for up to `within`.
void reap_orphans(std::chrono::milliseconds within) {
  auto until = steady::now() + within;
  while (steady::now() < until) {
    pid_t r = ::waitpid(-1, nullptr, WNOHANG);
    if (r == -1 && errno == ECHILD) {
      return;
    }
    if (r == 0) {
      std::this_thread::sleep_for(5ms);
    }
  }
}

// Returns the descriptors of `pid`, by number.
std::set<int> fds_of(const std::string& pid) {
  std::set<int> fds;
  if (DIR* d = ::opendir(("/proc/" + pid + "/fd").c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') {
        fds.insert(std::atoi(e->d_name));
      }
    }
    ::closedir(d);
  }
  return fds;
}

std::string one_mib() {
  std::string s;
  s.reserve(1 << 20);
  for (int i = 0; s.size() < (1u << 20); ++i) {
    s += static_cast<char>('a' + i % 26);
    if (i % 100 == 99) {
      s += '\n';
    }
  }
  s.resize(1 << 20);
  return s;
}

} // namespace

BOOST_TEST_GLOBAL_FIXTURE(subreaper_fixture);

BOOST_AUTO_TEST_CASE(noop_and_log_acknowledge) {
  auto msg = make_msg("{\"secret\":1}");
  auto ctx = make_ctx();
  BOOST_TEST((mailroom::make_noop_handler()(msg, ctx).what == outcome::kind::ok));
  BOOST_TEST((mailroom::make_log_handler()(msg, ctx).what == outcome::kind::ok));
}

BOOST_AUTO_TEST_CASE(demo_dead_letters_malformed_json) {
  auto demo = mailroom::make_demo_handler();
  auto ctx = make_ctx();
  auto r = demo(make_msg("{\"a\": nope}"), ctx);
  BOOST_TEST((r.what == outcome::kind::dead_letter));
  BOOST_TEST(r.reason.rfind("malformed JSON payload: ", 0) == 0);
  BOOST_TEST(r.reason.find("syntax error") != std::string::npos);
  BOOST_TEST((demo(make_msg(""), ctx).what == outcome::kind::dead_letter));
}

BOOST_AUTO_TEST_CASE(demo_retries_while_attempt_within_fail_attempts) {
  auto demo = mailroom::make_demo_handler();
  auto first = make_ctx(10s, 1);
  auto second = make_ctx(10s, 2);
  auto msg = make_msg(R"({"n":1,"fail_attempts":1})");
  auto r1 = demo(msg, first);
  BOOST_TEST((r1.what == outcome::kind::retry));
  BOOST_TEST(r1.reason == "simulated transient failure");
  BOOST_TEST((demo(msg, second).what == outcome::kind::ok));

  auto spaced = make_msg(R"({"fail_attempts" : 2})");
  BOOST_TEST((demo(spaced, second).what == outcome::kind::retry));
  auto third = make_ctx(10s, 3);
  BOOST_TEST((demo(spaced, third).what == outcome::kind::ok));

  BOOST_TEST(
      (demo(make_msg(R"({"fail_attempts":"3"})"), first).what == outcome::kind::ok));
  BOOST_TEST(
      (demo(make_msg(R"({"fail_attempts":1.5})"), first).what == outcome::kind::ok));
  BOOST_TEST((demo(make_msg(R"({"x":[1,2]})"), first).what == outcome::kind::ok));
}

BOOST_AUTO_TEST_CASE(demo_latency_sleeps_and_honours_cancellation) {
  auto slow = mailroom::make_demo_handler(30ms);
  auto ctx = make_ctx();
  auto t0 = steady::now();
  BOOST_TEST((slow(make_msg("{}"), ctx).what == outcome::kind::ok));
  BOOST_TEST((steady::now() - t0 >= 30ms));

  auto very_slow = mailroom::make_demo_handler(10s);
  std::atomic<bool> cancelled{false};
  ctx.cancelled = &cancelled;
  std::thread canceller([&] {
    std::this_thread::sleep_for(50ms);
    cancelled = true;
  });
  t0 = steady::now();
  auto r = very_slow(make_msg("{}"), ctx);
  canceller.join();
  BOOST_TEST((r.what == outcome::kind::retry));
  BOOST_TEST((steady::now() - t0 < 5s));
}

BOOST_AUTO_TEST_CASE(exec_exit_codes_map_to_outcomes) {
  auto ctx = make_ctx();
  auto msg = make_msg("{}");
  BOOST_TEST((sh("exit 0")(msg, ctx).what == outcome::kind::ok));

  auto retry = sh("echo 'try later' >&2; exit 75")(msg, ctx);
  BOOST_TEST((retry.what == outcome::kind::retry));
  BOOST_TEST(retry.reason == "exec exited 75: try later");

  auto dead = sh("echo 'first line' >&2; echo 'boom: bad input' >&2; exit 3")(msg, ctx);
  BOOST_TEST((dead.what == outcome::kind::dead_letter));
  BOOST_TEST(dead.reason.rfind("exec exited 3: ", 0) == 0);
  BOOST_TEST(dead.reason.find("boom: bad input") != std::string::npos);

  auto quiet = sh("exit 3")(msg, ctx);
  BOOST_TEST(quiet.reason == "exec exited 3");

  auto killed = sh("kill -9 $$")(msg, ctx);
  BOOST_TEST((killed.what == outcome::kind::retry)); // an OOM kill is not the message's
  BOOST_TEST(killed.reason == "exec killed by signal 9");
}

BOOST_AUTO_TEST_CASE(exec_payload_arrives_on_stdin) {
  temp_dir dir;
  auto ctx = make_ctx();
  auto small = dir.file("small");
  BOOST_TEST((sh("cat > '" + small + "'")(make_msg("hello\n\"world\""), ctx).what ==
              outcome::kind::ok));
  BOOST_TEST(read_file(small) == "hello\n\"world\"");

  auto big = dir.file("big");
  auto payload = one_mib();
  BOOST_TEST(
      (sh("cat > '" + big + "'")(make_msg(payload), ctx).what == outcome::kind::ok));
  BOOST_TEST((read_file(big) == payload));

  auto empty = dir.file("empty");
  BOOST_TEST((sh("cat > '" + empty + "'")(make_msg(""), ctx).what == outcome::kind::ok));
  BOOST_TEST(read_file(empty).empty());
}

BOOST_AUTO_TEST_CASE(exec_sees_message_environment) {
  temp_dir dir;
  auto out = dir.file("env");
  mailroom::exec_settings s;
  s.command = {"sh", "-c",
               "printf '%s|%s|%s|%s|%s|%s' \"$MAILROOM_TOPIC\" \"$MAILROOM_KEY\" "
               "\"$MAILROOM_MESSAGE_ID\" \"$MAILROOM_ATTEMPT\" \"$EXTRA_ONE\" "
               "\"${HOME:+home}\" > '" +
                   out + "'"};
  s.env = {{"EXTRA_ONE", "x=1"}};
  auto handler = mailroom::make_exec_handler(s);
  auto ctx = make_ctx(10s, 3);
  BOOST_TEST((handler(make_msg("", "key-7"), ctx).what == outcome::kind::ok));
  std::string expected = "orders|key-7|id-42|3|x=1|";
  expected += std::getenv("HOME") != nullptr ? "home" : "";
  BOOST_TEST(read_file(out) == expected);
}

BOOST_AUTO_TEST_CASE(exec_extra_env_wins_over_message_variables) {
  temp_dir dir;
  auto out = dir.file("env");
  mailroom::exec_settings s;
  s.command = {"sh", "-c",
               "printf '%s|%s' \"$MAILROOM_TOPIC\" \"$MAILROOM_KEY\" > '" + out + "'"};
  s.env = {{"MAILROOM_TOPIC", "forced"}};
  auto ctx = make_ctx();
  BOOST_TEST(
      (mailroom::make_exec_handler(s)(make_msg(""), ctx).what == outcome::kind::ok));
  BOOST_TEST(read_file(out) == "forced|k-1");
}

BOOST_AUTO_TEST_CASE(exec_past_deadline_spawns_nothing) {
  temp_dir dir;
  auto marker = dir.file("ran");
  handler_context ctx;
  ctx.deadline = steady::now() - 1ms;
  auto r = sh("touch '" + marker + "'")(make_msg(""), ctx);
  BOOST_TEST((r.what == outcome::kind::retry));
  BOOST_TEST(r.reason.rfind("handler timeout after ", 0) == 0);
  BOOST_TEST(::access(marker.c_str(), F_OK) == -1);
}

BOOST_AUTO_TEST_CASE(exec_timeout_kills_the_whole_process_group) {
  temp_dir dir;
  auto pids = dir.file("pids");
  auto handler =
      sh("echo $$ > '" + pids + "'; sleep 30 & echo $! >> '" + pids + "'; sleep 30");
  auto ctx = make_ctx(300ms);
  auto t0 = steady::now();
  auto r = handler(make_msg("{}"), ctx);
  auto took = steady::now() - t0;
  BOOST_TEST((r.what == outcome::kind::retry));
  BOOST_TEST(r.reason.rfind("handler timeout after ", 0) == 0);
  BOOST_TEST(r.reason.find(" ms") != std::string::npos);
  BOOST_TEST((took >= 290ms && took < 5s)); // not the 30 s sleep (a loaded CI machine is slow)

  std::istringstream in(read_file(pids));
  pid_t leader = 0, background = 0;
  in >> leader >> background;
  BOOST_REQUIRE(leader > 0);
  BOOST_REQUIRE(background > 0);
  BOOST_TEST(::kill(leader, 0) == -1); // reaped by the handler, not a zombie
  BOOST_TEST(orphan_dies(background, 5s));
  BOOST_TEST(group_dies(leader, 5s)); // the foreground sleep too
}

BOOST_AUTO_TEST_CASE(exec_cancellation_kills_the_child) {
  auto handler = sh("sleep 30");
  handler_context ctx; // no deadline: only cancellation ends it
  std::atomic<bool> cancelled{false};
  ctx.cancelled = &cancelled;
  std::thread canceller([&] {
    std::this_thread::sleep_for(100ms);
    cancelled = true;
  });
  auto t0 = steady::now();
  auto r = handler(make_msg(""), ctx);
  canceller.join();
  BOOST_TEST((r.what == outcome::kind::retry));
  BOOST_TEST(r.reason.rfind("handler timeout after ", 0) == 0);
  BOOST_TEST((steady::now() - t0 < 5s));
}

BOOST_AUTO_TEST_CASE(exec_leftover_background_processes_are_killed_on_exit) {
  temp_dir dir;
  auto pid_file = dir.file("bg");
  // The backgrounded sleep holds stdout and stderr open: the call must not
  // wait for it.
  auto handler = sh("sleep 30 & echo $! > '" + pid_file + "'; exit 0");
  auto ctx = make_ctx();
  auto t0 = steady::now();
  BOOST_TEST((handler(make_msg(""), ctx).what == outcome::kind::ok));
  BOOST_TEST((steady::now() - t0 < 5s));
  pid_t background = 0;
  std::istringstream(read_file(pid_file)) >> background;
  BOOST_REQUIRE(background > 0);
  BOOST_TEST(orphan_dies(background, 5s));
}

BOOST_AUTO_TEST_CASE(exec_spawn_failure_throws_so_the_engine_retries_and_counts_it) {
  // A typo is caught when the configuration is loaded; a spawn that fails
  // later is the machine's problem, not the message's: it must not be
  // dead-lettered (it used to dead-letter everything and exit 0).
  mailroom::exec_settings s;
  s.command = {"mailroom-no-such-command-xyz", "arg"};
  auto ctx = make_ctx();
  try {
    mailroom::make_exec_handler(s)(make_msg("{}"), ctx);
    BOOST_FAIL("a failed spawn returned an outcome");
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    BOOST_TEST(what.find("mailroom-no-such-command-xyz") != std::string::npos);
    BOOST_TEST(what.find("No such file or directory") != std::string::npos);
  }
  BOOST_CHECK_THROW(mailroom::make_exec_handler({}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(exec_killed_by_a_signal_is_retried_not_dead_lettered) {
  auto ctx = make_ctx();
  auto r = sh("echo dying >&2; kill -9 $$")(make_msg("{}"), ctx);
  BOOST_TEST((r.what == outcome::kind::retry));
  BOOST_TEST(r.reason == "exec killed by signal 9: dying");
}

BOOST_AUTO_TEST_CASE(exec_commands_are_checked_like_posix_spawnp_finds_them) {
  temp_dir dir;
  auto plain = dir.file("plain");
  std::ofstream{plain} << "#!/bin/sh\nexit 0\n";
  BOOST_TEST(mailroom::check_exec_command("sh").empty());
  BOOST_TEST(mailroom::check_exec_command("/bin/sh").empty());
  BOOST_TEST(mailroom::check_exec_command("mailroom-no-such-command-xyz") ==
             "not found in PATH");
  BOOST_TEST(mailroom::check_exec_command("/nonexistent/prog") ==
             "No such file or directory");
  BOOST_TEST(mailroom::check_exec_command(plain) == "is not executable");
  BOOST_TEST(mailroom::check_exec_command("/tmp") == "is a directory");
  ::chmod(plain.c_str(), 0755);
  BOOST_TEST(mailroom::check_exec_command(plain).empty());
}

BOOST_AUTO_TEST_CASE(exec_children_never_see_the_secrets_the_config_names) {
  temp_dir dir;
  auto out = dir.file("env");
  ::setenv("MAILROOM_TEST_SECRET_PW", "topsecret", 1);
  ::setenv("MAILROOM_TEST_PLAIN", "visible", 1);
  mailroom::exec_settings s;
  s.command = {"sh", "-c", "env > '" + out + "'"};
  s.scrub_env = {"MAILROOM_TEST_SECRET_PW"};
  auto ctx = make_ctx();
  BOOST_TEST((mailroom::make_exec_handler(s)(make_msg("{}"), ctx).what == outcome::kind::ok));
  auto env = read_file(out);
  BOOST_TEST(env.find("topsecret") == std::string::npos);
  BOOST_TEST(env.find("MAILROOM_TEST_PLAIN=visible") != std::string::npos);

  // env_clear: only the MAILROOM_* variables and the handler's own.
  s.env_clear = true;
  s.env = {{"ONLY_THIS", "1"}};
  BOOST_TEST((mailroom::make_exec_handler(s)(make_msg("{}"), ctx).what == outcome::kind::ok));
  env = read_file(out);
  BOOST_TEST(env.find("MAILROOM_TEST_PLAIN") == std::string::npos);
  BOOST_TEST(env.find("ONLY_THIS=1") != std::string::npos);
  BOOST_TEST(env.find("MAILROOM_TOPIC=orders") != std::string::npos);
  ::unsetenv("MAILROOM_TEST_SECRET_PW");
  ::unsetenv("MAILROOM_TEST_PLAIN");
}

BOOST_AUTO_TEST_CASE(exec_child_that_never_reads_stdin_does_not_hang) {
  auto payload = one_mib();
  auto t0 = steady::now();
  handler_context no_deadline;
  BOOST_TEST((sh("exit 0")(make_msg(payload), no_deadline).what == outcome::kind::ok));
  auto late = sh("sleep 0.2; echo done >&2; exit 4")(make_msg(payload), no_deadline);
  BOOST_TEST((late.what == outcome::kind::dead_letter));
  BOOST_TEST(late.reason == "exec exited 4: done");
  // Reads a little, then stops reading without exiting: only the deadline ends it.
  auto ctx = make_ctx(300ms);
  auto stuck = sh("head -c 10 >/dev/null; sleep 30")(make_msg(payload), ctx);
  BOOST_TEST((stuck.what == outcome::kind::retry));
  BOOST_TEST((steady::now() - t0 < 6s));
}

BOOST_AUTO_TEST_CASE(exec_output_is_bounded_and_drained) {
  auto ctx = make_ctx();
  auto t0 = steady::now();
  auto loud = sh("head -c 3000000 /dev/zero | tr '\\0' x >&2; head -c 3000000 /dev/zero; "
                 "echo END >&2; exit 2",
                 100)(make_msg(""), ctx);
  BOOST_TEST((loud.what == outcome::kind::dead_letter));
  BOOST_TEST(loud.reason.rfind("exec exited 2: ", 0) == 0);
  BOOST_TEST(loud.reason.size() <= std::string("exec exited 2: ").size() + 100);
  BOOST_TEST(loud.reason.find("END") != std::string::npos);
  BOOST_TEST((steady::now() - t0 < 3s));
}

BOOST_AUTO_TEST_CASE(exec_child_gets_only_standard_descriptors) {
  // The child should hold 0, 1, 2 and whatever this process itself lets
  // children inherit, none of the handler's pipes.
  std::set<int> expected{0, 1, 2};
  for (int fd : fds_of("self")) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags != -1 && (flags & FD_CLOEXEC) == 0) {
      expected.insert(fd);
    }
  }
  temp_dir dir;
  auto pid_file = dir.file("pid");
  auto handler = sh("echo $$ > '" + pid_file + ".tmp'; mv '" + pid_file + ".tmp' '" +
                    pid_file + "'; exec sleep 5");
  handler_context ctx;
  std::atomic<bool> cancelled{false};
  ctx.cancelled = &cancelled;
  outcome result;
  std::thread runner([&] { result = handler(make_msg("payload"), ctx); });
  std::set<int> seen;
  auto until = steady::now() + 3s;
  while (steady::now() < until) {
    auto pid = read_file(pid_file);
    if (!pid.empty()) {
      pid.pop_back();
      // comm turns to "sleep" at exec, before the loader has opened and
      // closed libc and the locale files: read until the set settles on
      // what is expected. A leaked pipe stays, so it never does.
      if (read_file("/proc/" + pid + "/comm") == "sleep\n") {
        seen = fds_of(pid);
        if (seen == expected) {
          break;
        }
      }
    }
    std::this_thread::sleep_for(5ms);
  }
  cancelled = true;
  runner.join();
  BOOST_TEST((result.what == outcome::kind::retry));
  BOOST_TEST((seen == expected));
}

BOOST_AUTO_TEST_CASE(exec_is_thread_safe_and_leaks_nothing) {
  auto handler = sh("test \"$(cat)\" = \"$MAILROOM_KEY\"");
  reap_orphans(500ms);
  int fds_before = open_fd_count();
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        auto key = "key-" + std::to_string(t) + "-" + std::to_string(i);
        auto ctx = make_ctx();
        if (handler(make_msg(key, key), ctx).what == outcome::kind::ok) {
          ++ok;
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  BOOST_TEST(ok.load() == 48);
  BOOST_TEST(open_fd_count() == fds_before);
  // Every child was reaped by the handler itself.
  BOOST_TEST((::waitpid(-1, nullptr, WNOHANG) <= 0));
}

// ---- exec_batch: one command per batch, the Lambda partial-batch contract -----------

namespace {

mailroom::batch_handler_fn sh_batch(const std::string& script) {
  mailroom::exec_settings s;
  s.command = {"/bin/sh", "-c", script};
  return mailroom::make_exec_batch_handler(std::move(s));
}

// A Lambda-style batch function in Python: reads the records, fails those
// whose payload says "fail", reports them as batchItemFailures.
const char* lambda_style = R"PY(
import json, sys
records = json.load(sys.stdin)
failed = [r["id"] for r in records if r.get("payload") == "fail"]
print(json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in failed]}))
)PY";

std::vector<envelope> three(const std::vector<std::string>& payloads) {
  std::vector<envelope> out;
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    auto m = make_msg(payloads[i], "k-" + std::to_string(i));
    m.id = "id-" + std::to_string(i);
    m.headers = {{"trace", "t-" + std::to_string(i)}};
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<const envelope*> views(const std::vector<envelope>& msgs) {
  std::vector<const envelope*> out;
  for (const auto& m : msgs) {
    out.push_back(&m);
  }
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(exec_batch_reports_only_the_items_the_script_names) {
  temp_dir dir;
  auto script = dir.file("handler.py");
  std::ofstream{script} << lambda_style;
  auto handler = sh_batch("exec python3 '" + script + "'");
  auto msgs = three({"ok", "fail", "ok"});
  auto ctx = make_ctx();
  auto failed = handler(views(msgs), ctx);
  BOOST_REQUIRE(failed.size() == 1u);
  BOOST_TEST(failed[0].id == "id-1");
  BOOST_TEST((failed[0].result.what == outcome::kind::retry));
  // All well: an empty list.
  auto fine = three({"ok", "ok", "ok"});
  BOOST_TEST(handler(views(fine), ctx).empty());
}

BOOST_AUTO_TEST_CASE(exec_batch_records_carry_every_field_and_binary_as_base64) {
  temp_dir dir;
  auto seen = dir.file("stdin.json");
  auto handler = sh_batch("cat > '" + seen + "'; echo $MAILROOM_BATCH_SIZE > '" + seen +
                          ".n'; echo '{}'");
  auto msgs = three({"{\"a\":1}", std::string{"\xff\x00\x01", 3}, ""});
  msgs[2].attempt = 3;
  auto ctx = make_ctx();
  BOOST_TEST(handler(views(msgs), ctx).empty());
  auto j = nlohmann::json::parse(read_file(seen));
  BOOST_REQUIRE(j.is_array());
  BOOST_REQUIRE(j.size() == 3u);
  BOOST_TEST(j[0]["id"] == "id-0");
  BOOST_TEST(j[0]["key"] == "k-0");
  BOOST_TEST(j[0]["topic"] == "orders");
  BOOST_TEST(j[0]["attempt"] == 1);
  BOOST_TEST(j[0]["headers"]["trace"] == "t-0");
  BOOST_TEST(j[0]["payload"] == "{\"a\":1}");
  BOOST_TEST(!j[1].contains("payload"));
  BOOST_TEST(j[1]["payload_base64"] == "/wAB");
  BOOST_TEST(j[2]["payload"] == "");
  BOOST_TEST(j[2]["attempt"] == 3);
  BOOST_TEST(read_file(seen + ".n") == "3\n");
}

BOOST_AUTO_TEST_CASE(exec_batch_garbage_or_a_bad_exit_retries_the_whole_batch) {
  auto msgs = three({"a", "b", "c"});
  for (auto [script, why] :
       {std::pair<std::string, std::string>{"echo 'not json at all'", "not JSON"},
        {"echo '{\"batchItemFailures\": 5}'", "no batchItemFailures array"},
        {"echo '{\"batchItemFailures\": [{\"id\": 1}]}'", "no itemIdentifier"},
        {"echo boom >&2; exit 3", "exec_batch exited 3: boom"},
        {"kill -9 $$", "exec_batch killed by signal 9"}}) {
    auto ctx = make_ctx();
    auto failed = sh_batch(script)(views(msgs), ctx);
    BOOST_REQUIRE_MESSAGE(failed.size() == 3u, script);
    for (const auto& f : failed) {
      BOOST_TEST((f.result.what == outcome::kind::retry));
      BOOST_TEST(f.result.reason.find(why) != std::string::npos, f.result.reason);
    }
  }
}

BOOST_AUTO_TEST_CASE(exec_batch_timeout_kills_the_group_and_retries_every_item) {
  temp_dir dir;
  auto pids = dir.file("pids");
  auto handler = sh_batch("echo $$ > '" + pids + "'; sleep 30");
  auto msgs = three({"a", "b"});
  auto ctx = make_ctx(300ms);
  auto t0 = steady::now();
  auto failed = handler(views(msgs), ctx);
  BOOST_TEST((steady::now() - t0 < 6s));
  BOOST_REQUIRE(failed.size() == 2u);
  BOOST_TEST(failed[0].result.reason.rfind("handler timeout after ", 0) == 0);
  pid_t leader = 0;
  std::istringstream{read_file(pids)} >> leader;
  BOOST_REQUIRE(leader > 0);
  BOOST_TEST(::kill(leader, 0) == -1); // killed and reaped
}
