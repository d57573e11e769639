#include "app/run_report.hpp"

#include <cstdio>

#include "core/process_stats.hpp"

namespace mailroom {

namespace {

double seconds_between(clock::time_point a, clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

} // namespace

run_report::run_report(std::chrono::milliseconds)
    : started_(clock::now()), last_(started_) {}

std::string run_report::grouped(std::uint64_t n) {
  auto digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) {
      out += ',';
    }
    out += digits[i];
  }
  return out;
}

void run_report::progress(const metrics_snapshot& m) {
  auto now = clock::now();
  auto settled = m.settled();
  auto dt = seconds_between(last_, now);
  auto rate = dt > 0 ? static_cast<double>(settled - last_settled_) / dt : 0.0;
  std::fprintf(stderr,
               "[%6.1fs] processed %s (%s msgs/s) in-flight %lld (running %lld, waiting "
               "%lld) retried %s dead-lettered %s deduped %s\n",
               seconds_between(started_, now), grouped(settled).c_str(),
               grouped(static_cast<std::uint64_t>(rate)).c_str(),
               static_cast<long long>(m.in_flight), static_cast<long long>(m.running),
               static_cast<long long>(m.waiting), grouped(m.retried).c_str(),
               grouped(m.dead_lettered).c_str(), grouped(m.deduped).c_str());
  last_ = now;
  last_settled_ = settled;
}

void run_report::summary(const metrics_snapshot& m, std::uint64_t dlq_size,
                         std::uint64_t rejected, const engine_exit& exit) {
  auto elapsed = seconds_between(started_, clock::now());
  auto rate = elapsed > 0 ? static_cast<double>(m.polled) / elapsed : 0.0;
  auto row = [](const char* name, const std::string& value) {
    std::printf("  %-22s %15s\n", name, value.c_str());
  };
  std::printf("mailroom run summary\n");
  row("deliveries polled", grouped(m.polled));
  row("acked", grouped(m.acked));
  row("  of which duplicates", grouped(m.deduped));
  row("retried", grouped(m.retried));
  row("deferred (handed back)", grouped(m.deferred));
  row("dead-lettered", grouped(m.dead_lettered));
  row("DLQ holds", grouped(dlq_size));
  row("  rejected by transport", grouped(rejected));
  row("handler errors", grouped(m.handler_errors));
  row("handler timeouts", grouped(m.timeouts));
  row("fenced settles", grouped(m.fenced));
  row("store errors", grouped(m.store_errors));
  row("recovered by sweeper", grouped(m.recovered));
  row("in-flight peak", grouped(static_cast<std::uint64_t>(m.in_flight_peak)));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f s", elapsed);
  row("elapsed", buf);
  row("throughput (msgs/s)", grouped(static_cast<std::uint64_t>(rate)));
  row("latency p50 (us)", grouped(m.p50_us));
  row("latency p99 (us)", grouped(m.p99_us));
  std::snprintf(buf, sizeof buf, "%.1f MiB",
                static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0));
  row("peak RSS", buf);
  row("drain", exit.drained ? "complete" : "handed back " + grouped(exit.handed_back));
  std::fflush(stdout);
}

} // namespace mailroom
