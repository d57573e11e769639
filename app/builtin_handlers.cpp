#include "app/builtin_handlers.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/log_event.hpp"
#include <spdlog/spdlog.h>

extern char** environ;

namespace mailroom {

namespace {

// --- demo -------------------------------------------------------------------

std::string parse_error_text(const std::string& payload) {
  try {
    [[maybe_unused]] auto doc = nlohmann::json::parse(payload);
  } catch (const nlohmann::json::exception& e) {
    std::string_view what = e.what();
    // Drop the "[json.exception.parse_error.101] " prefix.
    if (auto end = what.find("] ");
        !what.empty() && what[0] == '[' && end != std::string_view::npos) {
      what.remove_prefix(end + 2);
    }
    return std::string(what);
  }
  return "invalid JSON";
}

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Returns -1 when the payload has no non-negative integer "fail_attempts".
long long fail_attempts(const std::string& payload) {
  static constexpr std::string_view key = "\"fail_attempts\"";
  auto pos = payload.find(key.data(), 0, key.size());
  if (pos == std::string::npos) {
    return -1;
  }
  std::size_t i = pos + key.size();
  while (i < payload.size() && is_json_space(payload[i])) {
    ++i;
  }
  if (i >= payload.size() || payload[i] != ':') {
    return -1;
  }
  ++i;
  while (i < payload.size() && is_json_space(payload[i])) {
    ++i;
  }
  long long n = 0;
  std::size_t digits = 0;
  for (; i < payload.size() && payload[i] >= '0' && payload[i] <= '9'; ++i, ++digits) {
    n = std::min<long long>(n * 10 + (payload[i] - '0'), 1'000'000'000LL);
  }
  if (digits == 0 || (i < payload.size() &&
                      (payload[i] == '.' || payload[i] == 'e' || payload[i] == 'E'))) {
    return -1;
  }
  return n;
}

outcome demo(const envelope& msg, handler_context& ctx,
             std::chrono::microseconds latency) {
  if (latency.count() > 0) {
    constexpr auto slice = std::chrono::milliseconds{5};
    auto until = clock::now() + latency;
    for (auto now = clock::now(); now < until; now = clock::now()) {
      if (ctx.is_cancelled()) {
        return outcome::retry("cancelled");
      }
      std::this_thread::sleep_for(std::min<clock::duration>(
          until - now, std::chrono::duration_cast<clock::duration>(slice)));
    }
  }
  if (!nlohmann::json::accept(msg.payload)) {
    return outcome::dead_letter("malformed JSON payload: " +
                                parse_error_text(msg.payload));
  }
  if (auto n = fail_attempts(msg.payload); n >= 0 && ctx.attempt <= n) {
    return outcome::retry("simulated transient failure");
  }
  return outcome::ok();
}

// --- exec -------------------------------------------------------------------

class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

// Returns {read end, write end}, both close-on-exec, or sets errno.
bool make_pipe(unique_fd& r, unique_fd& w) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return false;
  }
  r.reset(fds[0]);
  w.reset(fds[1]);
  return true;
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Writing to a pipe whose reader is gone raises SIGPIPE, which would kill the
// whole engine; block it on this thread and swallow the one we caused.
class sigpipe_guard {
public:
  sigpipe_guard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;
  ~sigpipe_guard() {
    if (raised_ && !was_pending_) {
      timespec zero{};
      while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  void raised() { raised_ = true; }

private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool raised_ = false;
};

// Kills the group while the leader is still unreaped: its zombie pins the
// pid, so the group id cannot have been reused by an unrelated process.
class child_process {
public:
  explicit child_process(pid_t pid) : pid_(pid) {}
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (!reaped_) {
      kill_group();
      reap();
    }
  }

  pid_t pid() const { return pid_; }

  void kill_group() const {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
  }

  // Returns the wait status, or -1 when the kernel reaped the child itself
  // (SIGCHLD ignored).
  int reap() {
    int status = 0;
    pid_t r = -1;
    while ((r = ::waitpid(pid_, &status, 0)) == -1 && errno == EINTR) {
    }
    reaped_ = true;
    return r == pid_ ? status : -1;
  }

  bool exited_unreaped() const {
    siginfo_t info{};
    int rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    return rc == 0 && info.si_pid == pid_;
  }

private:
  pid_t pid_;
  bool reaped_ = false;
};

class posix_spawn_setup {
public:
  posix_spawn_setup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  posix_spawn_setup(const posix_spawn_setup&) = delete;
  posix_spawn_setup& operator=(const posix_spawn_setup&) = delete;
  ~posix_spawn_setup() {
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
};

std::string output_tail(const std::string& err) {
  constexpr std::size_t max_tail = 1024;
  std::size_t end = err.size();
  while (end > 0 && std::isspace(static_cast<unsigned char>(err[end - 1])) != 0) {
    --end;
  }
  std::size_t begin = end > max_tail ? end - max_tail : 0;
  // Do not start in the middle of a UTF-8 sequence.
  while (begin < end && (static_cast<unsigned char>(err[begin]) & 0xC0) == 0x80) {
    ++begin;
  }
  while (begin < end && std::isspace(static_cast<unsigned char>(err[begin])) != 0) {
    ++begin;
  }
  return err.substr(begin, end - begin);
}

std::string with_tail(std::string head, const std::string& err) {
  auto tail = output_tail(err);
  if (!tail.empty()) {
    head += ": ";
    head += tail;
  }
  return head;
}

class exec_runner {
public:
  explicit exec_runner(exec_settings s) : settings_(std::move(s)) {
    if (settings_.command.empty() || settings_.command[0].empty()) {
      throw std::invalid_argument("exec.command: must name a program to run");
    }
    for (const auto& name : per_message_names) {
      if (!overridden(name)) {
        per_message_.emplace_back(name);
      }
    }
    auto dropped = [&](std::string_view entry) {
      auto name = entry.substr(0, entry.find('='));
      auto listed = [&](const auto& names) {
        return std::find(names.begin(), names.end(), name) != names.end();
      };
      // Secrets the configuration names (the Redis password's variable...)
      // never reach a child: it may print its environment.
      return overridden(name) || listed(per_message_) || listed(settings_.scrub_env);
    };
    for (char** e = environ; !settings_.env_clear && e != nullptr && *e != nullptr; ++e) {
      if (!dropped(*e)) {
        fixed_env_.emplace_back(*e);
      }
    }
    for (const auto& [name, value] : settings_.env) {
      fixed_env_.push_back(name + "=" + value);
    }
    for (auto& entry : fixed_env_) {
      fixed_envp_.push_back(entry.data());
    }
    for (auto& arg : settings_.command) {
      argv_.push_back(const_cast<char*>(arg.c_str()));
    }
    argv_.push_back(nullptr);
  }
  // envp and argv point into the strings above.
  exec_runner(const exec_runner&) = delete;
  exec_runner& operator=(const exec_runner&) = delete;

  outcome run(const envelope& msg, handler_context& ctx) const;

private:
  static constexpr const char* per_message_names[] = {
      "MAILROOM_TOPIC", "MAILROOM_KEY", "MAILROOM_MESSAGE_ID", "MAILROOM_ATTEMPT"};

  bool overridden(std::string_view name) const {
    return std::any_of(settings_.env.begin(), settings_.env.end(),
                       [&](const auto& kv) { return kv.first == name; });
  }

  exec_settings settings_;
  std::vector<std::string> per_message_; // MAILROOM_* names not overridden
  std::vector<std::string> fixed_env_;
  std::vector<char*> fixed_envp_;
  std::vector<char*> argv_;
};

outcome exec_runner::run(const envelope& msg, handler_context& ctx) const {
  const auto start = clock::now();
  const bool has_deadline = ctx.deadline != clock::time_point{};
  if (ctx.is_cancelled() || (has_deadline && start >= ctx.deadline)) {
    return outcome::retry("handler timeout after 0 ms");
  }

  std::vector<std::string> msg_env;
  msg_env.reserve(per_message_.size());
  for (const auto& name : per_message_) {
    std::string value;
    if (name == "MAILROOM_TOPIC") {
      value = msg.topic;
    } else if (name == "MAILROOM_KEY") {
      value = msg.key;
    } else if (name == "MAILROOM_MESSAGE_ID") {
      value = msg.id;
    } else {
      value = std::to_string(ctx.attempt);
    }
    msg_env.push_back(name + "=" + value);
  }
  std::vector<char*> envp = fixed_envp_;
  for (auto& entry : msg_env) {
    envp.push_back(entry.data());
  }
  envp.push_back(nullptr);

  unique_fd in_r, in_w, out_r, out_w, err_r, err_w;
  if (!make_pipe(in_r, in_w) || !make_pipe(out_r, out_w) || !make_pipe(err_r, err_w)) {
    return outcome::retry("exec pipe failed: " + errno_text(errno));
  }
  // Only the parent's ends: O_NONBLOCK lives on the open file description,
  // so setting it on the child's ends would hand the child a non-blocking stdin.
  set_nonblocking(in_w.get());
  set_nonblocking(out_r.get());
  set_nonblocking(err_r.get());

  pid_t pid = -1;
  int spawn_error = 0;
  {
    posix_spawn_setup setup;
    posix_spawn_file_actions_adddup2(&setup.actions, in_r.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&setup.actions, out_w.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&setup.actions, err_w.get(), STDERR_FILENO);
    sigset_t empty;
    sigemptyset(&empty);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGALRM, SIGUSR1,
                    SIGUSR2}) {
      sigaddset(&defaults, sig);
    }
    posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&setup.attr, 0);
    posix_spawnattr_setsigmask(&setup.attr, &empty);
    posix_spawnattr_setsigdefault(&setup.attr, &defaults);
    spawn_error = posix_spawnp(&pid, argv_[0], &setup.actions, &setup.attr, argv_.data(),
                               envp.data());
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  if (spawn_error != 0) {
    // The command was checked when the configuration was loaded: a failure
    // now (processes or memory exhausted, the file replaced meanwhile) is the
    // machine's, not the message's. Thrown, so it counts as a handler error
    // and the message is retried.
    throw std::runtime_error("exec spawn of '" + settings_.command[0] +
                             "' failed: " + errno_text(spawn_error));
  }

  child_process child(pid);
  sigpipe_guard no_sigpipe;
  // pidfd_open may be missing (old kernel, seccomp); waitid(WNOWAIT) polling
  // is the fallback.
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  const std::string& payload = msg.payload;
  const std::size_t cap = settings_.max_output_bytes;
  std::size_t written = 0;
  std::string out, err;
  bool exited = false;
  clock::time_point drain_until{};
  if (payload.empty()) {
    in_w.reset();
  }

  auto read_into = [&](unique_fd& fd, std::string& buf, bool keep_tail) {
    char chunk[16384];
    for (int i = 0; i < 16; ++i) {
      ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
      if (n > 0) {
        if (keep_tail) {
          buf.append(chunk, static_cast<std::size_t>(n));
          if (buf.size() > 2 * cap + sizeof chunk) {
            buf.erase(0, buf.size() - cap);
          }
        } else if (buf.size() < cap) {
          buf.append(chunk, std::min(static_cast<std::size_t>(n), cap - buf.size()));
        }
        continue;
      }
      if (n == -1 && errno == EINTR) {
        continue;
      }
      if (n == 0 || errno != EAGAIN) {
        fd.reset();
      }
      return;
    }
  };

  for (;;) {
    auto now = clock::now();
    if (!exited && (ctx.is_cancelled() || (has_deadline && now >= ctx.deadline))) {
      child.kill_group();
      child.reap();
      auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count();
      return outcome::retry("handler timeout after " + std::to_string(ms) + " ms");
    }
    if (exited && ((!out_r.valid() && !err_r.valid()) || now >= drain_until)) {
      break;
    }

    pollfd fds[4];
    nfds_t count = 0;
    int in_slot = -1, out_slot = -1, err_slot = -1, pid_slot = -1;
    if (in_w.valid()) {
      in_slot = static_cast<int>(count);
      fds[count++] = {in_w.get(), POLLOUT, 0};
    }
    if (out_r.valid()) {
      out_slot = static_cast<int>(count);
      fds[count++] = {out_r.get(), POLLIN, 0};
    }
    if (err_r.valid()) {
      err_slot = static_cast<int>(count);
      fds[count++] = {err_r.get(), POLLIN, 0};
    }
    if (!exited && pidfd.valid()) {
      pid_slot = static_cast<int>(count);
      fds[count++] = {pidfd.get(), POLLIN, 0};
    }
    // Short slices: cancellation is a flag, not something poll can wait on.
    clock::duration wait =
        pidfd.valid() ? std::chrono::milliseconds{10} : std::chrono::milliseconds{2};
    if (exited) {
      wait = std::min(wait, drain_until - now);
    } else if (has_deadline) {
      wait = std::min(wait, ctx.deadline - now);
    }
    auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    int ready = ::poll(fds, count, static_cast<int>(std::max<long long>(wait_ms, 0)));
    if (ready < 0 && errno != EINTR) {
      child.kill_group();
      child.reap();
      return outcome::retry("exec poll failed: " + errno_text(errno));
    }
    if (ready <= 0) {
      if (!exited && !pidfd.valid() && child.exited_unreaped()) {
        exited = true;
      }
    } else {
      if (in_slot >= 0 && fds[in_slot].revents != 0) {
        while (written < payload.size()) {
          ssize_t n =
              ::write(in_w.get(), payload.data() + written, payload.size() - written);
          if (n > 0) {
            written += static_cast<std::size_t>(n);
          } else if (n == -1 && errno == EINTR) {
            continue;
          } else {
            if (n == -1 && errno == EPIPE) {
              no_sigpipe.raised();
            }
            if (n == -1 && errno == EAGAIN) {
              break;
            }
            in_w.reset(); // the child closed its stdin: it has read all it wants
            break;
          }
        }
        if (written == payload.size()) {
          in_w.reset();
        }
      }
      if (out_slot >= 0 && fds[out_slot].revents != 0) {
        read_into(out_r, out, false);
      }
      if (err_slot >= 0 && fds[err_slot].revents != 0) {
        read_into(err_r, err, true);
      }
      if (pid_slot >= 0 && fds[pid_slot].revents != 0) {
        exited = true;
      } else if (!exited && !pidfd.valid() && child.exited_unreaped()) {
        exited = true;
      }
    }
    if (exited && drain_until == clock::time_point{}) {
      // Stragglers would keep the pipes open; the leader's exit ends the call.
      child.kill_group();
      in_w.reset();
      drain_until = clock::now() + std::chrono::milliseconds{200};
    }
  }

  int status = child.reap();
  if (status == -1) {
    return outcome::retry("exec exit status lost: SIGCHLD is ignored in this process");
  }
  if (err.size() > cap) {
    err.erase(0, err.size() - cap);
  }
  if (!out.empty() && spdlog::should_log(spdlog::level::debug)) {
    log_event(spdlog::level::debug, "exec output",
              {{"command", settings_.command[0]},
               {"id", msg.id},
               {"topic", msg.topic},
               {"stdout", output_tail(out)}});
  }
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    if (code == 0) {
      return outcome::ok();
    }
    auto why = with_tail("exec exited " + std::to_string(code), err);
    return code == 75 ? outcome::retry(std::move(why))
                      : outcome::dead_letter(std::move(why));
  }
  if (WIFSIGNALED(status)) {
    // Killed from outside (the OOM killer, an operator): says nothing about
    // the message, so it is retried within its budget.
    return outcome::retry(
        with_tail("exec killed by signal " + std::to_string(WTERMSIG(status)), err));
  }
  return outcome::dead_letter("exec ended with wait status " + std::to_string(status));
}

} // namespace

handler_fn make_noop_handler() {
  return [](const envelope&, handler_context&) { return outcome::ok(); };
}

handler_fn make_log_handler() {
  return [](const envelope& msg, handler_context& ctx) {
    spdlog::info("message topic={} key={} id={} attempt={} payload_bytes={}", msg.topic,
                 msg.key, msg.id, ctx.attempt, msg.payload.size());
    return outcome::ok();
  };
}

handler_fn make_demo_handler() {
  return make_demo_handler(std::chrono::microseconds{0});
}

handler_fn make_demo_handler(std::chrono::microseconds latency) {
  return [latency](const envelope& msg, handler_context& ctx) {
    return demo(msg, ctx, latency);
  };
}

handler_fn make_exec_handler(exec_settings settings) {
  auto runner = std::make_shared<const exec_runner>(std::move(settings));
  return [runner](const envelope& msg, handler_context& ctx) {
    return runner->run(msg, ctx);
  };
}

std::string check_exec_command(const std::string& program) {
  auto check = [](const std::string& path) -> std::string {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
      return errno_text(errno);
    }
    if (S_ISDIR(st.st_mode)) {
      return "is a directory";
    }
    if (!S_ISREG(st.st_mode)) {
      return "is not a regular file";
    }
    if (::access(path.c_str(), X_OK) != 0) {
      return "is not executable";
    }
    return {};
  };
  if (program.empty()) {
    return "is empty";
  }
  if (program.find('/') != std::string::npos) {
    return check(program);
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::string first_problem;
  for (std::size_t begin = 0; begin <= dirs.size();) {
    auto end = dirs.find(':', begin);
    if (end == std::string::npos) {
      end = dirs.size();
    }
    auto dir = dirs.substr(begin, end - begin);
    auto candidate = (dir.empty() ? std::string{"."} : dir) + "/" + program;
    auto why = check(candidate);
    if (why.empty()) {
      return {};
    }
    if (first_problem.empty() && why != errno_text(ENOENT)) {
      first_problem = candidate + " " + why;
    }
    begin = end + 1;
  }
  return first_problem.empty() ? "not found in PATH" : first_problem;
}

} // namespace mailroom
