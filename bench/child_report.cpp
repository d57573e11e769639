#include "child_report.hpp"

#include "child_process.hpp"

namespace mailroom::bench {

nlohmann::json run_report_child(const std::string& kind, std::vector<std::string> args,
                                std::chrono::seconds timeout) {
  args.insert(args.begin(), {"/proc/self/exe", kind});
  auto r = run_child(args, timeout);
  auto line = last_json_line(r.out);
  if (!line.empty()) {
    try {
      return nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      return {{"kind", kind}, {"check", std::string{"FAILED: bad report: "} + e.what()}};
    }
  }
  return {{"kind", kind}, {"check", "FAILED: child " + r.how()}};
}

} // namespace mailroom::bench
