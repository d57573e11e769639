#include "posix/child_process.hpp"

#include <cerrno>
#include <csignal>
#include <thread>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace mailroom::posix {

namespace {

// posix_spawn's file actions and attributes, destroyed on every path.
struct spawn_setup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  spawn_setup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~spawn_setup() {
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }
  spawn_setup(const spawn_setup&) = delete;
  spawn_setup& operator=(const spawn_setup&) = delete;
};

// Wires child stream `fd` to `target`; for a pipe, `parent` gets our end and
// `child_end` the child's (closed once the child has it). Returns 0 or errno.
int wire(spawn_setup& setup, int fd, const stdio_target& target, unique_fd& parent,
         unique_fd& child_end) {
  switch (target.what) {
  case stdio_target::kind::inherit:
    return 0;
  case stdio_target::kind::null:
    return posix_spawn_file_actions_addopen(&setup.actions, fd, "/dev/null",
                                            fd == STDIN_FILENO ? O_RDONLY : O_WRONLY, 0);
  case stdio_target::kind::file:
    return posix_spawn_file_actions_addopen(
        &setup.actions, fd, target.path.c_str(),
        fd == STDIN_FILENO ? O_RDONLY
                           : O_WRONLY | O_CREAT | (target.append ? O_APPEND : O_TRUNC),
        0644);
  case stdio_target::kind::pipe: {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return errno;
    }
    bool reads = fd == STDIN_FILENO; // the child reads its stdin
    parent.reset(reads ? fds[1] : fds[0]);
    child_end.reset(reads ? fds[0] : fds[1]);
    return posix_spawn_file_actions_adddup2(&setup.actions, child_end.get(), fd);
  }
  }
  return 0;
}

} // namespace

std::optional<child_process> child_process::spawn(const spawn_options& options,
                                                  int& error) {
  error = 0;
  if (options.argv.empty()) {
    error = EINVAL;
    return std::nullopt;
  }
  child_process child;
  spawn_setup setup;
  unique_fd child_in, child_out, child_err;
  if ((error = wire(setup, STDIN_FILENO, options.in, child.in_, child_in)) != 0 ||
      (error = wire(setup, STDOUT_FILENO, options.out, child.out_, child_out)) != 0 ||
      (error = wire(setup, STDERR_FILENO, options.err, child.err_, child_err)) != 0) {
    return std::nullopt;
  }
  short flags = 0;
  if (options.own_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&setup.attr, 0);
  }
  sigset_t empty, defaults;
  if (options.reset_signals) {
    sigemptyset(&empty);
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGALRM, SIGUSR1,
                    SIGUSR2}) {
      sigaddset(&defaults, sig);
    }
    flags |= POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    posix_spawnattr_setsigmask(&setup.attr, &empty);
    posix_spawnattr_setsigdefault(&setup.attr, &defaults);
  }
  posix_spawnattr_setflags(&setup.attr, flags);
  std::vector<char*> argv;
  for (const auto& a : options.argv) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (options.env) {
    for (const auto& e : *options.env) {
      envp.push_back(const_cast<char*>(e.c_str()));
    }
    envp.push_back(nullptr);
  }
  error = posix_spawnp(&child.pid_, argv[0], &setup.actions, &setup.attr, argv.data(),
                       options.env ? envp.data() : environ);
  if (error != 0) {
    child.reaped_ = true; // nothing to reap
    return std::nullopt;
  }
  child.own_group_ = options.own_process_group;
  return child;
}

child_process::child_process(child_process&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), own_group_(o.own_group_),
      reaped_(std::exchange(o.reaped_, true)), in_(std::move(o.in_)),
      out_(std::move(o.out_)), err_(std::move(o.err_)) {}

child_process& child_process::operator=(child_process&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0 && !reaped_) {
      kill_group();
      wait();
    }
    pid_ = std::exchange(o.pid_, -1);
    own_group_ = o.own_group_;
    reaped_ = std::exchange(o.reaped_, true);
    in_ = std::move(o.in_);
    out_ = std::move(o.out_);
    err_ = std::move(o.err_);
  }
  return *this;
}

child_process::~child_process() {
  if (pid_ > 0 && !reaped_) {
    kill_group();
    wait();
  }
}

void child_process::signal(int sig) const {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, sig);
  }
}

void child_process::kill_group() const {
  if (pid_ <= 0 || reaped_) {
    return;
  }
  if (own_group_) {
    ::kill(-pid_, SIGKILL);
  }
  ::kill(pid_, SIGKILL);
}

bool child_process::exited() const {
  if (pid_ <= 0 || reaped_) {
    return false;
  }
  siginfo_t info{};
  int rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
  return rc == 0 && info.si_pid == pid_;
}

std::optional<int> child_process::try_wait() {
  if (reaped_) {
    return std::nullopt;
  }
  int status = 0;
  pid_t r = 0;
  while ((r = ::waitpid(pid_, &status, WNOHANG)) == -1 && errno == EINTR) {
  }
  if (r == pid_) {
    reaped_ = true;
    return status;
  }
  if (r == -1) { // ECHILD: reaped by the kernel (SIGCHLD ignored)
    reaped_ = true;
    return -1;
  }
  return std::nullopt;
}

std::optional<int> child_process::wait_for(std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (auto s = try_wait()) {
      return s;
    }
    if (std::chrono::steady_clock::now() >= end) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
}

int child_process::wait() {
  if (reaped_) {
    return -1;
  }
  int status = 0;
  pid_t r = -1;
  while ((r = ::waitpid(pid_, &status, 0)) == -1 && errno == EINTR) {
  }
  reaped_ = true;
  return r == pid_ ? status : -1;
}

int exit_code_of(int status) {
  if (status == -1) {
    return -1;
  }
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

} // namespace mailroom::posix
