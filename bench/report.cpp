#include "report.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "child_process.hpp"
#include "figures.hpp"

namespace mailroom::bench {
namespace {

using nlohmann::json;

constexpr double target_msgs_per_s = 1000000.0;
constexpr double target_ratio = 0.5;
constexpr double flat_growth_limit = 0.10;

std::string fixed(double value, int decimals, const char* suffix = "") {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", decimals, value, suffix);
  return buf;
}

double num(const json& j, const char* key) {
  auto i = j.find(key);
  return (i != j.end() && i->is_number()) ? i->get<double>() : NAN;
}

std::string mib(double bytes) {
  return std::isfinite(bytes) ? fixed(bytes / (1024.0 * 1024.0), 1) : "-";
}

bool ok(const json& run) { return run.value("check", std::string{}) == "ok"; }

// One row: name, msgs/s, steady msgs/s, p50, p99, RSS, ratios, check.
void row(std::ostream& out, const std::string& name, const json& r, const std::string& ratio_ll,
         const std::string& ratio_sp) {
  char buf[512];
  auto opt = [&](const char* key) { return grouped(num(r, key)); };
  std::string cpu = "-", csw = "-";
  if (r.contains("cpu")) {
    cpu = fixed(num(r["cpu"], "us_per_msg"), 2);
    csw = fixed(num(r["cpu"], "voluntary_switches_per_msg"), 3);
  }
  std::snprintf(buf, sizeof buf, "%-26s %11s %11s %9s %9s %8s %8s %8s %12s %8s  %s\n",
                name.c_str(), opt("msgs_per_s").c_str(), opt("steady_msgs_per_s").c_str(),
                opt("p50_us").c_str(), opt("p99_us").c_str(), mib(num(r, "peak_rss_bytes")).c_str(),
                cpu.c_str(), csw.c_str(),
                ratio_ll.c_str(), ratio_sp.c_str(), r.value("check", std::string{"-"}).c_str());
  out << buf;
}

} // namespace

void evaluate_targets(json& results) {
  json best_rate = {{"target_msgs_per_s", target_msgs_per_s}, {"pass", false}};
  json best_ratio = {{"target_ratio", target_ratio}, {"pass", false}};
  double rate = -1, ratio = -1;
  for (auto& run : results["runs"]) {
    auto& e = run["engine"];
    if (!ok(e)) {
      continue;
    }
    double r = num(e, "msgs_per_s");
    if (r > rate) {
      rate = r;
      best_rate["best_msgs_per_s"] = r;
      best_rate["at_max_in_flight"] = run["max_in_flight"];
    }
    double q = num(run, "ratio_long_lived");
    if (std::isfinite(q) && q > ratio) {
      ratio = q;
      best_ratio["best_ratio"] = q;
      best_ratio["at_max_in_flight"] = run["max_in_flight"];
    }
  }
  best_rate["pass"] = rate >= target_msgs_per_s;
  best_ratio["pass"] = ratio >= target_ratio;
  json flat = {{"limit_growth_10_to_90", flat_growth_limit}, {"pass", false}};
  if (results.contains("flat") && ok(results["flat"]) &&
      results["flat"]["rss"].value("valid", false)) {
    double g = results["flat"]["rss"]["growth_10_to_90"].get<double>();
    flat["growth_10_to_90"] = g;
    flat["messages"] = results["flat"]["messages"];
    flat["pass"] = g < flat_growth_limit;
  }
  results["targets"] = {{"throughput", best_rate}, {"ratio_to_long_lived", best_ratio},
                        {"rss_flat", flat}};
}

void print_table(const json& results, std::ostream& out) {
  auto& m = results["machine"];
  auto& s = results["settings"];
  out << "\nmailroom bench: " << grouped(s["messages"].get<double>())
      << " messages per configuration, no-op handler, dedupe on (duplicates "
      << fixed(s["duplicate_ratio"].get<double>() * 100, 0, "%") << "), "
      << s["workers_effective"].get<std::string>() << " workers\n"
      << "machine: " << m.value("cpu_model", "?") << ", " << m.value("nproc", 0)
      << " cores, " << m.value("kernel", "?") << ", CAF " << m.value("caf_version", "?")
      << ", " << m.value("build_type", "?") << ", " << m.value("allocator", "?")
      << " malloc, git " << m.value("git_commit", "?")
      << (m.value("git_dirty", false) ? " (dirty)" : "") << ", " << m.value("date", "?")
      << "\n\n";
  char head[512];
  std::snprintf(head, sizeof head, "%-26s %11s %11s %10s %10s %8s %9s %8s %13s %9s  %s\n",
                "configuration", "msgs/s", "steady/s", "p50 µs", "p99 µs", "RSS MiB", "CPU µs",
                "csw/msg", "÷long-lived", "÷spawn", "check");
  out << head;
  for (auto& run : results["runs"]) {
    auto mif = std::to_string(run["max_in_flight"].get<std::uint64_t>());
    auto ratio = [&](const char* key) {
      double v = num(run, key);
      return std::isfinite(v) ? fixed(v, 2, "x") : std::string{"-"};
    };
    row(out, "engine mif=" + mif, run["engine"], ratio("ratio_long_lived"), ratio("ratio_spawn"));
    if (run.contains("long_lived")) {
      row(out, "  CAF long-lived mif=" + mif, run["long_lived"], "", "");
    }
    if (run.contains("spawn")) {
      row(out, "  CAF spawn mif=" + mif, run["spawn"], "", "");
    }
  }
  out << "\n(msgs/s = messages settled / wall seconds from start to stop; steady/s = rate "
         "between the 10% and 90% samples;\n RSS = peak RSS of the configuration's own process; "
         "CPU µs = CPU time of all its threads (user + sys) per message;\n csw/msg = voluntary "
         "context switches (a thread blocked) per message; ÷ = engine msgs/s over the ceiling's\n "
         "msgs/s at the same max_in_flight)\n";

  if (results.contains("flat")) {
    auto& f = results["flat"];
    out << "\nRSS flatness: " << grouped(num(f, "messages")) << " messages at max_in_flight "
        << f.value("max_in_flight", 0) << ": " << grouped(num(f, "msgs_per_s")) << " msgs/s, check "
        << f.value("check", std::string{"-"}) << "\n";
    if (f.contains("rss") && f["rss"].value("valid", false)) {
      auto& r = f["rss"];
      out << "  RSS at 10% " << mib(num(r, "at_10pct_bytes")) << " MiB, 50% "
          << mib(num(r, "at_50pct_bytes")) << " MiB, 90% " << mib(num(r, "at_90pct_bytes"))
          << " MiB, max sampled " << mib(num(r, "max_sampled_bytes")) << " MiB (peak "
          << mib(num(f, "peak_rss_bytes")) << " MiB)\n  growth 10%→90% "
          << fixed(num(r, "growth_10_to_90") * 100, 1, "%") << ", 50%→90% "
          << fixed(num(r, "growth_50_to_90") * 100, 1, "%") << "; settle rate just before 10% "
          << grouped(num(r, "msgs_per_s_before_10pct")) << " msgs/s, before 90% "
          << grouped(num(r, "msgs_per_s_before_90pct"))
          << " msgs/s\n  (the idempotency store keeps result_ttl x rate keys and malloc keeps its "
             "high-water mark: RSS steps up with bursts of rate; see the samples in the JSON)\n";
    } else {
      out << "  (no RSS profile: the run did not reach 90%)\n";
    }
  }

  if (results.contains("targets")) {
    auto& t = results["targets"];
    auto verdict = [](const json& x) { return x.value("pass", false) ? "PASS" : "MISS"; };
    auto where = [](const json& x) {
      return x.contains("at_max_in_flight")
                 ? " (max_in_flight " + std::to_string(x["at_max_in_flight"].get<int>()) + ")"
                 : std::string{};
    };
    auto& tr = t["throughput"];
    auto& rr = t["ratio_to_long_lived"];
    auto& fr = t["rss_flat"];
    out << "\ntargets\n";
    out << "  >= 1,000,000 msgs/s end-to-end:        best "
        << (tr.contains("best_msgs_per_s") ? grouped(num(tr, "best_msgs_per_s")) : "-") << where(tr)
        << "  " << verdict(tr) << "\n";
    out << "  >= 0.5x the long-lived-actor ceiling: best "
        << (rr.contains("best_ratio") ? fixed(num(rr, "best_ratio"), 2, "x") : "-") << where(rr)
        << "  " << verdict(rr) << "\n";
    out << "  RSS flat (growth 10%->90% < 10%):     "
        << (fr.contains("growth_10_to_90") ? fixed(num(fr, "growth_10_to_90") * 100, 1, "%") + "  " +
                                                 verdict(fr)
                                           : std::string{"not measured"})
        << "\n";
  }
}

std::string write_outputs(json& results, const std::string& dir, bool draw) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  auto json_path = fs::path{dir} / "results.json";
  auto dat_path = fs::path{dir} / "throughput.dat";
  auto png_path = fs::path{dir} / "throughput.png";
  {
    std::ofstream dat{dat_path};
    dat << "# max_in_flight engine_msgs_per_s long_lived_msgs_per_s spawn_msgs_per_s\n";
    for (auto& run : results["runs"]) {
      auto cell = [&](const char* key) -> std::string {
        if (!run.contains(key) || !ok(run[key])) {
          return "?";
        }
        return fixed(num(run[key], "msgs_per_s"), 0);
      };
      dat << run["max_in_flight"].get<std::uint64_t>() << ' ' << cell("engine") << ' '
          << cell("long_lived") << ' ' << cell("spawn") << '\n';
    }
  }
  std::string chart;
  auto title_raw = "mailroom " + results["machine"].value("git_commit", std::string{}) + ", " +
               std::to_string(results["settings"]["messages"].get<std::uint64_t>()) +
               " msgs, " + results["machine"].value("cpu_model", std::string{}) + " x" +
               std::to_string(results["machine"].value("nproc", 0));
  std::string title;
  for (char c : title_raw) {
    if (c != '\'' && c != '"' && c != '\\') {
      title += c;
    }
  }
  auto plot = !draw ? child_result{} : run_child({"gnuplot", "-e",
                         "datafile='" + dat_path.string() + "'; outfile='" + png_path.string() +
                             "'; charttitle='" + title + "'",
                         std::string{MAILROOM_BENCH_DIR} + "/throughput.gp"},
                        std::chrono::seconds{60});
  if (plot.ok()) {
    chart = png_path.string();
  } else if (draw) {
    std::cerr << "bench: gnuplot " << plot.how() << ": no chart drawn\n";
  }
  results["outputs"] = {{"json", json_path.string()},
                        {"data", dat_path.string()},
                        {"chart", chart}};
  std::ofstream{json_path} << results.dump(2) << '\n';
  return chart;
}

} // namespace mailroom::bench
