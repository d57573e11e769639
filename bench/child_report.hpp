#pragma once

// A single-run subcommand of this binary, run in a child process of its own
// and read back as its one-line JSON report.

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mailroom::bench {

/// Runs `/proc/self/exe kind args...` (killed after `timeout`) and returns
/// the last JSON line it printed, or {"kind", "check": "FAILED: ..."} when
/// it printed none (crashed, killed, bad JSON). A child whose check failed
/// exits 1 but still reports: its report is returned.
nlohmann::json run_report_child(const std::string& kind, std::vector<std::string> args,
                                std::chrono::seconds timeout);

} // namespace mailroom::bench
