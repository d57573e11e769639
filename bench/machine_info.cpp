#include "machine_info.hpp"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>

#include <caf/config.hpp>
#include <sys/utsname.h>
#include <unistd.h>

namespace mailroom::bench {
namespace {

// Returns the value after the first "key<spaces>:" line of a /proc file.
std::string proc_field(const char* path, const std::string& key) {
  std::ifstream in{path};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      auto colon = line.find(':');
      if (colon == std::string::npos) {
        continue;
      }
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return {};
}

// Returns the first line a shell command prints, trimmed, or "".
std::string first_line_of(const std::string& command) {
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[512];
    if (std::fgets(buf, sizeof buf, p)) {
      out = buf;
    }
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

} // namespace

nlohmann::json machine_info() {
  nlohmann::json m;
  m["nproc"] = sysconf(_SC_NPROCESSORS_ONLN);
  m["hardware_concurrency"] = std::thread::hardware_concurrency();
  m["cpu_model"] = proc_field("/proc/cpuinfo", "model name");
  m["mem_total"] = proc_field("/proc/meminfo", "MemTotal");
  utsname u{};
  if (uname(&u) == 0) {
    m["kernel"] = std::string{u.sysname} + " " + u.release + " " + u.machine;
  }
  {
    std::ifstream in{"/proc/loadavg"};
    std::string load;
    std::getline(in, load);
    m["loadavg_at_start"] = load;
  }
  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  m["date"] = date;
  m["caf_version"] = std::to_string(CAF_MAJOR_VERSION) + "." +
                     std::to_string(CAF_MINOR_VERSION) + "." +
                     std::to_string(CAF_PATCH_VERSION);
  m["compiler"] = __VERSION__;
  m["build_type"] = MAILROOM_BUILD_TYPE;
  m["allocator"] = MAILROOM_ALLOCATOR;
  const std::string git = std::string{"git -C '"} + MAILROOM_SOURCE_DIR + "' ";
  m["git_commit"] = first_line_of(git + "rev-parse --short HEAD 2>/dev/null");
  m["git_dirty"] = !first_line_of(git + "status --porcelain -- core actors transports "
                                        "stores app include 2>/dev/null")
                        .empty();
  return m;
}

} // namespace mailroom::bench
