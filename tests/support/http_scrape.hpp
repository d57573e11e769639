#pragma once

// Test support: GET from a mailroom's /metrics, /healthz and /readyz, and
// read one series out of a scrape.

#include <cstdio>
#include <fstream>
#include <string>

#include <httplib.h>

namespace mailroom::testing {

/// A status and a body; status -1 when nothing answered.
struct http_reply {
  int status = -1;
  std::string body;
};

/// GETs `path` from 127.0.0.1:`port` (2 s timeouts).
inline http_reply http_get(int port, const std::string& path) {
  httplib::Client client{"127.0.0.1", port};
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(2, 0);
  auto res = client.Get(path.c_str());
  if (!res) {
    return {};
  }
  return {res->status, res->body};
}

/// Returns the value of the first sample of `series` (name and labels as
/// written, e.g. `mailroom_acked_total{transport="redis"}`), or -1.
inline double series_value(const std::string& scrape, const std::string& series) {
  auto at = scrape.find("\n" + series + " ");
  if (at == std::string::npos) {
    return -1;
  }
  return std::stod(scrape.substr(at + series.size() + 2));
}

/// Returns the sum of every sample of metric `name` whatever its labels (0
/// when it has none).
inline double series_sum(const std::string& scrape, const std::string& name) {
  double sum = 0;
  for (auto at = scrape.find("\n" + name + "{"); at != std::string::npos;
       at = scrape.find("\n" + name + "{", at + 1)) {
    auto value = scrape.find("} ", at);
    sum += std::stod(scrape.substr(value + 2));
  }
  return sum;
}

/// Runs `promtool check metrics` on `scrape`; returns its exit code and
/// puts what it printed in `output`.
inline int promtool_check(const std::string& scrape, std::string& output) {
  auto path = "/tmp/mailroom-scrape-" + std::to_string(::getpid()) + ".txt";
  std::ofstream{path} << scrape;
  auto cmd = "promtool check metrics < " + path + " 2>&1";
  output.clear();
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    return -1;
  }
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) {
    output += buf;
  }
  int status = ::pclose(p);
  std::remove(path.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace mailroom::testing
