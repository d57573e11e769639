#pragma once

// Test support: runs a real Kafka broker (a KRaft single node, broker and
// controller in one JVM) on free loopback ports, and can stop, kill, pause and
// restart it on the same ports and data for outage tests.
//
// The jars come from scripts/fetch-servers.sh (Kafka 4.1.1, in
// ${MAILROOM_CACHE_DIR:-$HOME/.cache/mailroom}/kafka-4.1.1/lib, or the
// directory $MAILROOM_KAFKA_LIB names); java is $MAILROOM_JAVA,
// $JAVA_HOME/bin/java or java on PATH; readiness is asked with kcat
// ($MAILROOM_KCAT or kcat on PATH). All of these come with
// scripts/install-deps.sh and scripts/fetch-servers.sh; when one is missing the
// constructor throws, so a test fails loudly instead of skipping.
//
// Start-up, measured on the 2-core test machine (idle / while a 2-job
// compile runs beside it): the constructor (two StorageTool JVMs to format,
// then the broker until it answers metadata) takes ~4.5 s / ~7 s; restart()
// after a stop ~2.7 s / ~4.5 s plus the ~2 s controlled shutdown; restart()
// after kill() ~5 s (~12 s before broker.session.timeout.ms was lowered:
// the controller holds the dead broker's registration until its session
// expires); create_topic() ~1.2 s / ~1.7 s. Budget 10-15 s per broker on a
// loaded machine; the start limit is 60 s.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/free_port.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/server_process.hpp"

namespace mailroom::testing {

// Helpers of the servers that run on the JVM (this broker, and ElasticMQ in
// tests/support/elasticmq_server.hpp, which includes this header for them).
namespace jvm_server_detail {

/// Returns true when something accepts a TCP connection on 127.0.0.1:`port`.
inline bool accepts_connections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

/// Returns `name` as found in PATH, or an empty string.
inline std::string on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs{path != nullptr ? path : "/usr/bin:/bin"};
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    auto candidate = (dir.empty() ? std::string{"."} : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return {};
}

/// Returns the java binary: $MAILROOM_JAVA, $JAVA_HOME/bin/java, java on PATH.
inline std::string find_java() {
  if (const char* forced = std::getenv("MAILROOM_JAVA"); forced != nullptr) {
    if (::access(forced, X_OK) == 0) {
      return forced;
    }
    throw std::runtime_error(std::string{"MAILROOM_JAVA="} + forced + " is not an executable");
  }
  if (const char* home = std::getenv("JAVA_HOME"); home != nullptr && *home != '\0') {
    auto candidate = std::string{home} + "/bin/java";
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  auto found = on_path("java");
  if (found.empty()) {
    throw std::runtime_error("java is not installed (not on PATH, MAILROOM_JAVA and "
                             "JAVA_HOME unset): the Kafka and SQS tests run real "
                             "servers on the JVM; install it with "
                             "scripts/install-deps.sh (openjdk-17-jre-headless)");
  }
  return found;
}

/// Returns the jar directory of a server fetched by scripts/fetch-servers.sh:
/// $`env_name` when set, else the cache default for `name`-`version`.
inline std::string find_lib(const char* env_name, const std::string& name,
                            const std::string& version) {
  namespace fs = std::filesystem;
  auto has_jars = [](const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      return false;
    }
    for (const auto& entry : fs::directory_iterator{dir, ec}) {
      if (entry.path().extension() == ".jar") {
        return true;
      }
    }
    return false;
  };
  if (const char* forced = std::getenv(env_name); forced != nullptr && *forced != '\0') {
    if (!has_jars(forced)) {
      throw std::runtime_error(std::string{env_name} + "=" + forced +
                               " is not a directory of jars (scripts/fetch-servers.sh fetches them "
                               "into the cache, where the tests find them without it)");
    }
    return forced;
  }
  fs::path cache;
  if (const char* dir = std::getenv("MAILROOM_CACHE_DIR"); dir != nullptr && *dir != '\0') {
    cache = dir;
  } else {
    const char* home = std::getenv("HOME");
    cache = fs::path{home != nullptr ? home : "/root"} / ".cache" / "mailroom";
  }
  auto dir = cache / (name + "-" + version);
  std::error_code ec;
  if (!fs::exists(dir / ".complete", ec) || !has_jars(dir / "lib")) {
    throw std::runtime_error(name + " " + version + " is not fetched (no " +
                             (dir / "lib").string() + "): run scripts/fetch-servers.sh " +
                             "(or set " + env_name + " to a directory of its jars)");
  }
  return (dir / "lib").string();
}

/// Makes a fresh directory /tmp/`prefix`XXXXXX and returns its path.
inline std::string make_temp_dir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error("cannot make a temporary directory " + pattern);
  }
  return buffer.data();
}

/// Writes `text` to `path`; throws when it cannot.
inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out{path, std::ios::trunc};
  out << text;
  out.close();
  if (!out) {
    throw std::runtime_error("cannot write " + path);
  }
}

} // namespace jvm_server_detail

/// One Kafka broker child process (KRaft, broker and controller in one node)
/// on 127.0.0.1, with its data in a temporary directory that the destructor
/// removes.
class kafka_broker {
public:
  /// The Kafka version scripts/fetch-servers.sh fetches.
  static constexpr const char* version = "4.1.1";

  /// Options of the broker.
  struct options {
    /// server.properties entries that add to or replace the test defaults
    /// (e.g. {"transaction.max.timeout.ms", "60000"}).
    std::map<std::string, std::string> properties;
    /// How long start-up (and restart()) may take.
    std::chrono::milliseconds start_limit = std::chrono::seconds{60};
  };

  /// Formats a fresh storage, starts the broker on free ports and waits until
  /// it answers a metadata request.
  explicit kafka_broker(options opts) : options_(std::move(opts)) {
    java_ = jvm_server_detail::find_java();
    lib_ = jvm_server_detail::find_lib("MAILROOM_KAFKA_LIB", "kafka", version);
    kcat_ = find_kcat();
    dir_ = jvm_server_detail::make_temp_dir("mailroom-kafka-");
    process_ = std::make_unique<server_process>(std::vector<std::string>{},
                                                dir_ + "/broker.log");
    jvm_server_detail::write_file(log4j_path(), log4j_config());
    std::string why;
    try {
      // Another process may take a free port between probe and bind: retry
      // with new ports and a fresh storage.
      for (int attempt = 0; attempt < 3; ++attempt) {
        port_ = free_port();
        do {
          controller_port_ = free_port();
        } while (controller_port_ == port_);
        auto begin = std::chrono::steady_clock::now();
        if (format(why) && try_start(why)) {
          start_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - begin);
          return;
        }
      }
    } catch (...) {
      cleanup();
      throw;
    }
    cleanup();
    throw std::runtime_error("the Kafka broker did not start: " + why);
  }

  /// A broker with the test defaults.
  kafka_broker() : kafka_broker(options{}) {}

  /// Stops the broker and removes its directory (data, config and log).
  ~kafka_broker() { cleanup(); }

  kafka_broker(const kafka_broker&) = delete;
  kafka_broker& operator=(const kafka_broker&) = delete;

  /// Returns the bootstrap address, "127.0.0.1:PORT".
  std::string bootstrap() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Returns the broker (PLAINTEXT) port.
  int port() const { return port_; }

  /// Returns the controller port.
  int controller_port() const { return controller_port_; }

  /// Returns how long the last start (format included) or restart took.
  std::chrono::milliseconds start_time() const { return start_time_; }

  /// Creates `topic` with `partitions` partitions (replication factor 1) with
  /// org.apache.kafka.tools.TopicCommand; throws with its output on failure.
  void create_topic(const std::string& topic, int partitions) {
    process_runner run{java_command("org.apache.kafka.tools.TopicCommand",
                                    {"--bootstrap-server", bootstrap(), "--create",
                                     "--topic", topic, "--partitions",
                                     std::to_string(partitions), "--replication-factor",
                                     "1"})};
    int code = run.wait(std::chrono::seconds{60});
    if (code != 0) {
      throw std::runtime_error("TopicCommand --create --topic " + topic + " exited " +
                               std::to_string(code) + ": " + run.out() + run.err());
    }
  }

  /// Stops the broker with SIGTERM (a controlled shutdown, ~2 s; SIGKILL
  /// after 30 s) and reaps it.
  void stop() { process_->stop(std::chrono::seconds{30}); }

  /// Kills the broker with SIGKILL and reaps it.
  void kill() { process_->kill(); }

  /// Freezes the broker (SIGSTOP): connections stay open, nothing answers.
  void pause() { process_->pause(); }

  /// Thaws a paused broker (SIGCONT).
  void resume() { process_->resume(); }

  /// Starts the broker again on the same ports with the same data (stopping
  /// it first if it runs) and waits until it serves; throws when it does not.
  void restart() {
    stop();
    std::string why;
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto begin = std::chrono::steady_clock::now();
      if (try_start(why)) {
        start_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - begin);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{500});
    }
    throw std::runtime_error("the Kafka broker did not restart on port " +
                             std::to_string(port_) + ": " + why);
  }

  /// Returns true when the broker answers a metadata request now.
  bool serves() const {
    if (!jvm_server_detail::accepts_connections(port_)) {
      return false;
    }
    process_runner probe{{kcat_, "-b", bootstrap(), "-L", "-t", "__probe", "-m", "5"}};
    if (probe.wait(std::chrono::seconds{10}) != 0) {
      return false;
    }
    return probe.out().find("broker 1 at " + bootstrap()) != std::string::npos;
  }

  /// Returns what the broker logged so far (WARN and above, and its stdout).
  std::string log() const { return process_->log(); }

  /// Returns the kcat binary the broker is probed with.
  const std::string& kcat() const { return kcat_; }

  /// Returns the broker's directory (server.properties, data/, broker.log).
  const std::string& dir() const { return dir_; }

private:
  static std::string find_kcat() {
    if (const char* forced = std::getenv("MAILROOM_KCAT"); forced != nullptr) {
      if (::access(forced, X_OK) == 0) {
        return forced;
      }
      throw std::runtime_error(std::string{"MAILROOM_KCAT="} + forced +
                               " is not an executable");
    }
    auto found = jvm_server_detail::on_path("kcat");
    if (found.empty()) {
      throw std::runtime_error("kcat is not installed (not on PATH, MAILROOM_KCAT "
                               "unset): the Kafka tests use it; install it with "
                               "scripts/install-deps.sh (apt-get install kcat)");
    }
    return found;
  }

  std::string properties_path() const { return dir_ + "/server.properties"; }
  std::string log4j_path() const { return dir_ + "/log4j2.properties"; }
  std::string data_dir() const { return dir_ + "/data"; }

  // WARN and above to stderr, which server_process appends to the log.
  static std::string log4j_config() {
    return "status = error\n"
           "appender.err.type = Console\n"
           "appender.err.name = ERR\n"
           "appender.err.target = SYSTEM_ERR\n"
           "appender.err.layout.type = PatternLayout\n"
           "appender.err.layout.pattern = [%d] %p %m (%c)%n\n"
           "rootLogger.level = WARN\n"
           "rootLogger.appenderRef.err.ref = ERR\n";
  }

  std::string server_properties() const {
    auto host = std::string{"127.0.0.1:"};
    std::map<std::string, std::string> p{
        {"process.roles", "broker,controller"},
        {"node.id", "1"},
        {"controller.quorum.voters", "1@" + host + std::to_string(controller_port_)},
        {"listeners", "PLAINTEXT://" + host + std::to_string(port_) + ",CONTROLLER://" +
                          host + std::to_string(controller_port_)},
        {"advertised.listeners", "PLAINTEXT://" + host + std::to_string(port_)},
        {"controller.listener.names", "CONTROLLER"},
        {"inter.broker.listener.name", "PLAINTEXT"},
        {"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
        {"log.dirs", data_dir()},
        {"num.partitions", "1"},
        {"default.replication.factor", "1"},
        {"auto.create.topics.enable", "false"},
        {"offsets.topic.replication.factor", "1"},
        {"offsets.topic.num.partitions", "4"},
        {"transaction.state.log.replication.factor", "1"},
        {"transaction.state.log.min.isr", "1"},
        {"transaction.state.log.num.partitions", "4"},
        {"share.coordinator.state.topic.replication.factor", "1"},
        {"share.coordinator.state.topic.min.isr", "1"},
        {"group.initial.rebalance.delay.ms", "0"},
        {"group.min.session.timeout.ms", "1000"},
        // After a kill() the restarted broker cannot register until the
        // controller expired the old registration's session (9 s by default).
        {"broker.session.timeout.ms", "2000"},
        {"broker.heartbeat.interval.ms", "500"},
        {"num.network.threads", "2"},
        {"num.io.threads", "2"},
    };
    for (const auto& [key, value] : options_.properties) {
      p[key] = value;
    }
    std::string text;
    for (const auto& [key, value] : p) {
      text += key + "=" + value + "\n";
    }
    return text;
  }

  std::vector<std::string> java_command(const std::string& main_class,
                                        std::vector<std::string> args,
                                        bool server = false) const {
    std::vector<std::string> argv{java_};
    if (server) {
      argv.emplace_back("-Xmx512m");
    }
    argv.insert(argv.end(), {"-Dlog4j2.configurationFile=" + log4j_path(),
                             "-Djava.awt.headless=true", "-cp", lib_ + "/*", main_class});
    argv.insert(argv.end(), std::make_move_iterator(args.begin()),
                std::make_move_iterator(args.end()));
    return argv;
  }

  // A fresh data directory formatted for a fresh cluster id.
  bool format(std::string& why) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir(), ec);
    jvm_server_detail::write_file(properties_path(), server_properties());
    process_runner uuid{java_command("kafka.tools.StorageTool", {"random-uuid"})};
    int code = uuid.wait(std::chrono::seconds{60});
    std::string id = uuid.out();
    while (!id.empty() && (id.back() == '\n' || id.back() == '\r' || id.back() == ' ')) {
      id.pop_back();
    }
    if (code != 0 || id.empty()) {
      why = "StorageTool random-uuid exited " + std::to_string(code) + ": " + uuid.out() +
            uuid.err();
      return false;
    }
    process_runner run{java_command("kafka.tools.StorageTool",
                                    {"format", "-t", id, "-c", properties_path()})};
    code = run.wait(std::chrono::seconds{60});
    if (code != 0) {
      why = "StorageTool format exited " + std::to_string(code) + ": " + run.out() +
            run.err();
      return false;
    }
    return true;
  }

  bool try_start(std::string& why) {
    process_->set_argv(java_command("kafka.Kafka", {properties_path()}, true));
    return process_->start([this] { return serves(); }, options_.start_limit, why);
  }

  void cleanup() {
    if (process_) {
      process_->stop(std::chrono::seconds{30});
      process_.reset();
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  options options_;
  std::string java_, lib_, kcat_, dir_;
  int port_ = 0;
  int controller_port_ = 0;
  std::chrono::milliseconds start_time_{0};
  std::unique_ptr<server_process> process_;
};

} // namespace mailroom::testing
