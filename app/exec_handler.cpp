#include "app/exec_handler.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <stdexcept>
#include <memory>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "app/batch_records.hpp"
#include "core/log_event.hpp"
#include "posix/child_process.hpp"
#include "posix/sigpipe_guard.hpp"

extern char** environ;

namespace mailroom {

namespace {

using posix::child_process;
using posix::unique_fd;

std::string errno_text(int err) {
  return std::generic_category().message(err);
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

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

// What one call collected from its child.
struct child_output {
  std::string out, err;
  bool timed_out = false;
  std::int64_t elapsed_ms = 0;
};

class exec_runner {
public:
  explicit exec_runner(exec_settings s);
  exec_runner(const exec_runner&) = delete;
  exec_runner& operator=(const exec_runner&) = delete;

  outcome run(const envelope& msg, handler_context& ctx) const;

  // One call for a whole batch: the records as a JSON array on stdin, the
  // failed items from a Lambda partial-batch response on stdout.
  std::vector<batch_item_failure> run_batch(const std::vector<const envelope*>& batch,
                                            handler_context& ctx) const;

private:
  static constexpr const char* per_message_names[] = {
      "MAILROOM_TOPIC", "MAILROOM_KEY", "MAILROOM_MESSAGE_ID", "MAILROOM_ATTEMPT"};

  bool overridden(std::string_view name) const {
    return std::any_of(settings_.env.begin(), settings_.env.end(),
                       [&](const auto& kv) { return kv.first == name; });
  }
  // Starts the child for `msg` with its payload on a pipe; throws when it
  // cannot be started.
  child_process spawn(const envelope& msg, std::uint32_t attempt) const;
  // Starts the child with `env` and pipes on its three streams.
  child_process launch(std::vector<std::string> env) const;
  // Feeds the payload, drains stdout and stderr and waits for the exit, or
  // kills the group at the deadline or on cancellation.
  child_output pump(child_process& child, const std::string& payload,
                    handler_context& ctx, clock::time_point start) const;
  // Turns the exit status and output into an outcome.
  outcome reap(child_process& child, child_output& output, const envelope& msg) const;

  exec_settings settings_;
  std::vector<std::string> per_message_; // MAILROOM_* names not overridden
  std::vector<std::string> fixed_env_;
};

exec_runner::exec_runner(exec_settings s) : settings_(std::move(s)) {
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
}

child_process exec_runner::spawn(const envelope& msg, std::uint32_t attempt) const {
  auto env = fixed_env_;
  for (const auto& name : per_message_) {
    std::string value = name == std::string_view{"MAILROOM_TOPIC"}        ? msg.topic
                        : name == std::string_view{"MAILROOM_KEY"}        ? msg.key
                        : name == std::string_view{"MAILROOM_MESSAGE_ID"} ? msg.id
                                                                          : std::to_string(attempt);
    env.push_back(name + "=" + value);
  }
  return launch(std::move(env));
}

child_process exec_runner::launch(std::vector<std::string> env) const {
  posix::spawn_options options;
  options.argv = settings_.command;
  options.env = std::move(env);
  options.in = options.out = options.err = posix::stdio_target::pipe();
  options.own_process_group = true;
  options.reset_signals = true;
  int error = 0;
  auto child = child_process::spawn(options, error);
  if (!child) {
    // The command was checked when the configuration was loaded: a failure
    // now (processes or memory exhausted, the file replaced meanwhile) is the
    // machine's, not the message's. Thrown, so it counts as a handler error
    // and the message is retried.
    throw std::runtime_error("exec spawn of '" + settings_.command[0] +
                             "' failed: " + errno_text(error));
  }
  // Only the parent's ends: O_NONBLOCK lives on the open file description,
  // so setting it on the child's would hand the child a non-blocking stdin.
  set_nonblocking(child->stdin_pipe().get());
  set_nonblocking(child->stdout_pipe().get());
  set_nonblocking(child->stderr_pipe().get());
  return std::move(*child);
}

child_output exec_runner::pump(child_process& child, const std::string& payload,
                               handler_context& ctx, clock::time_point start) const {
  child_output r;
  sigpipe_guard no_sigpipe; // a child that exits without reading its stdin
  // pidfd_open may be missing (old kernel, seccomp); polling waitid is the
  // fallback.
  unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child.pid(), 0)));
  unique_fd& in = child.stdin_pipe();
  unique_fd& out = child.stdout_pipe();
  unique_fd& err = child.stderr_pipe();
  const std::size_t cap = settings_.max_output_bytes;
  const bool has_deadline = ctx.deadline != clock::time_point{};
  std::size_t written = 0;
  bool exited = false;
  clock::time_point drain_until{};
  if (payload.empty()) {
    in.reset();
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
  auto feed = [&] {
    while (written < payload.size()) {
      ssize_t n = ::write(in.get(), payload.data() + written, payload.size() - written);
      if (n > 0) {
        written += static_cast<std::size_t>(n);
      } else if (n == -1 && errno == EINTR) {
        continue;
      } else {
        if (!(n == -1 && errno == EAGAIN)) {
          in.reset(); // the child closed its stdin: it has read all it wants
        }
        return;
      }
    }
    in.reset();
  };
  for (;;) {
    auto now = clock::now();
    if (!exited && (ctx.is_cancelled() || (has_deadline && now >= ctx.deadline))) {
      child.kill_group();
      child.wait();
      r.timed_out = true;
      r.elapsed_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count();
      return r;
    }
    if (exited && ((!out.valid() && !err.valid()) || now >= drain_until)) {
      return r;
    }
    pollfd fds[4];
    nfds_t count = 0;
    int in_slot = -1, out_slot = -1, err_slot = -1, pid_slot = -1;
    auto watch = [&](unique_fd& fd, short events, int& slot) {
      if (fd.valid()) {
        slot = static_cast<int>(count);
        fds[count++] = {fd.get(), events, 0};
      }
    };
    watch(in, POLLOUT, in_slot);
    watch(out, POLLIN, out_slot);
    watch(err, POLLIN, err_slot);
    if (!exited) {
      watch(pidfd, POLLIN, pid_slot);
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
      throw std::runtime_error("exec poll failed: " + errno_text(errno));
    }
    if (ready > 0) {
      if (in_slot >= 0 && fds[in_slot].revents != 0) {
        feed();
      }
      if (out_slot >= 0 && fds[out_slot].revents != 0) {
        read_into(out, r.out, false);
      }
      if (err_slot >= 0 && fds[err_slot].revents != 0) {
        read_into(err, r.err, true);
      }
      exited = exited || (pid_slot >= 0 && fds[pid_slot].revents != 0);
    }
    exited = exited || (!pidfd.valid() && child.exited());
    if (exited && drain_until == clock::time_point{}) {
      // Stragglers would keep the pipes open; the leader's exit ends the call.
      child.kill_group();
      in.reset();
      drain_until = clock::now() + std::chrono::milliseconds{200};
    }
  }
}

outcome exec_runner::reap(child_process& child, child_output& output,
                          const envelope& msg) const {
  if (output.timed_out) {
    return outcome::retry("handler timeout after " + std::to_string(output.elapsed_ms) +
                          " ms");
  }
  int status = child.wait();
  if (status == -1) {
    return outcome::retry("exec exit status lost: SIGCHLD is ignored in this process");
  }
  auto& err = output.err;
  if (err.size() > settings_.max_output_bytes) {
    err.erase(0, err.size() - settings_.max_output_bytes);
  }
  if (!output.out.empty() && spdlog::should_log(spdlog::level::debug)) {
    log_event(spdlog::level::debug, "exec output",
              {{"command", settings_.command[0]},
               {"id", msg.id},
               {"topic", msg.topic},
               {"stdout", output_tail(output.out)}});
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

outcome exec_runner::run(const envelope& msg, handler_context& ctx) const {
  const auto start = clock::now();
  const bool has_deadline = ctx.deadline != clock::time_point{};
  if (ctx.is_cancelled() || (has_deadline && start >= ctx.deadline)) {
    return outcome::retry("handler timeout after 0 ms");
  }
  auto child = spawn(msg, ctx.attempt);
  auto output = pump(child, msg.payload, ctx, start);
  return reap(child, output, msg);
}

std::vector<batch_item_failure> exec_runner::run_batch(const std::vector<const envelope*>& batch,
                                                       handler_context& ctx) const {
  auto fail_all = [&](const std::string& why) {
    std::vector<batch_item_failure> all;
    for (const auto* m : batch) {
      all.push_back({m->id, outcome::retry(why)});
    }
    return all;
  };
  const auto start = clock::now();
  if (ctx.is_cancelled() || (ctx.deadline != clock::time_point{} && start >= ctx.deadline)) {
    return fail_all("handler timeout after 0 ms");
  }
  auto env = fixed_env_;
  env.push_back("MAILROOM_TOPIC=" + (batch.empty() ? std::string{} : batch.front()->topic));
  env.push_back("MAILROOM_BATCH_SIZE=" + std::to_string(batch.size()));
  auto child = launch(std::move(env));
  auto output = pump(child, batch_records_json(batch), ctx, start);
  if (output.timed_out) {
    return fail_all("handler timeout after " + std::to_string(output.elapsed_ms) + " ms");
  }
  int status = child.wait();
  if (status == -1) {
    return fail_all("exec exit status lost: SIGCHLD is ignored in this process");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    auto what = WIFEXITED(status) ? "exec_batch exited " + std::to_string(WEXITSTATUS(status))
                                  : "exec_batch killed by signal " +
                                        std::to_string(WTERMSIG(status));
    return fail_all(with_tail(what, output.err));
  }
  std::vector<std::string> ids;
  std::string problem;
  if (!parse_batch_response(output.out, ids, problem)) {
    return fail_all("exec_batch: " + problem);
  }
  std::vector<batch_item_failure> failed;
  for (auto& id : ids) {
    failed.push_back({std::move(id), outcome::retry(with_tail("exec_batch reported it failed",
                                                              output.err))});
  }
  return failed;
}

} // namespace

batch_handler_fn make_exec_batch_handler(exec_settings settings) {
  auto runner = std::make_shared<const exec_runner>(std::move(settings));
  return [runner](const std::vector<const envelope*>& batch, handler_context& ctx) {
    return runner->run_batch(batch, ctx);
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
