#include "app/run_report.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/process_stats.hpp"

namespace mailroom {

namespace {

double seconds_between(clock::time_point a, clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string utc_now() {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                now.time_since_epoch())
                .count() %
            1000;
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                utc.tm_sec, static_cast<int>(ms));
  return buf;
}

// One summary row: its name, its value, and how deep it is indented.
struct row {
  const char* name;
  std::string text;
  int depth = 0;
  const char* json_key = nullptr; // member name in the JSON summary
  nlohmann::json value;           // its value there
};

} // namespace

run_report::run_report(std::chrono::milliseconds heartbeat, bool json)
    : heartbeat_(heartbeat), json_(json), started_(clock::now()), last_(started_) {}

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
  // An idle consumer prints a line when something happens, and a heartbeat
  // now and then, not a line a second for ever.
  bool changed = settled != last_settled_ || m.in_flight != last_in_flight_;
  if (!changed && printed_ && now - last_ < heartbeat_) {
    return;
  }
  auto dt = seconds_between(last_, now);
  auto rate = dt > 0 ? static_cast<double>(settled - last_settled_) / dt : 0.0;
  auto elapsed = seconds_between(started_, now);
  if (json_) {
    nlohmann::json line = {{"time", utc_now()},
                           {"level", "info"},
                           {"logger", "mailroom"},
                           {"msg", "progress"},
                           {"elapsed_s", elapsed},
                           {"settled", settled},
                           {"settled_per_s", rate},
                           {"acked", m.acked},
                           {"retried", m.retried},
                           {"dead_lettered", m.dead_lettered},
                           {"deferred", m.deferred},
                           {"in_flight", m.in_flight},
                           {"running", m.running},
                           {"waiting", m.waiting}};
    std::fprintf(stderr, "%s\n", line.dump().c_str());
  } else {
    std::fprintf(stderr,
                 "[%6.1fs] settled %s (%s/s): acked %s, retried %s, dead-lettered %s, "
                 "deferred %s; in flight %lld (running %lld, waiting %lld)\n",
                 elapsed, grouped(settled).c_str(),
                 grouped(static_cast<std::uint64_t>(rate)).c_str(), grouped(m.acked).c_str(),
                 grouped(m.retried).c_str(), grouped(m.dead_lettered).c_str(),
                 grouped(m.deferred).c_str(), static_cast<long long>(m.in_flight),
                 static_cast<long long>(m.running), static_cast<long long>(m.waiting));
  }
  last_ = now;
  last_settled_ = settled;
  last_in_flight_ = m.in_flight;
  printed_ = true;
}

void run_report::summary(const metrics_snapshot& m, const run_outcome& outcome) {
  const auto& exit = outcome.exit;
  auto elapsed = seconds_between(started_, clock::now());
  auto rate = elapsed > 0 ? static_cast<double>(m.settled()) / elapsed : 0.0;
  auto still = static_cast<std::uint64_t>(std::max<std::int64_t>(0, m.in_flight));
  auto count = [](const char* name, std::uint64_t v, int depth, const char* key) {
    return row{name, grouped(v), depth, key, v};
  };
  std::vector<row> rows{
      count("deliveries polled", m.polled, 0, "polled"),
      count("recovered by sweeper", m.recovered, 0, "recovered_by_sweeper"),
      count("acked", m.acked, 0, "acked"),
      count("of which duplicates", m.deduped, 1, "acked_duplicates"),
      count("of which unrouted", m.unrouted, 1, "acked_unrouted"),
      count("retried", m.retried, 0, "retried"),
      count("deferred (handed back)", m.deferred, 0, "deferred"),
      count("of which at the drain", m.handed_back, 1, "deferred_at_drain"),
      count("dead-lettered", m.dead_lettered, 0, "dead_lettered"),
      count("revoked with their partition", m.revoked, 0, "revoked"),
      count("fenced settles", m.fenced, 0, "fenced"),
      count("ack failed", m.ack_failures, 0, "ack_failed"),
      count("still in flight", still, 0, "still_in_flight")};
  if (outcome.dlq_depth) {
    rows.push_back(count("DLQ holds", *outcome.dlq_depth, 0, "dlq_holds"));
  } else {
    rows.push_back({"DLQ holds", "unknown", 0, "dlq_holds", nullptr});
  }
  // Poison deliveries (undecodable, over the delivery limit) are in the DLQ
  // too, but not among the dead-lettered: no handler ever saw them.
  rows.push_back(count("rejected by transport", m.rejected, 1, "rejected_by_transport"));
  for (const auto& [name, value] : outcome.transport_rows) {
    rows.push_back(row{name.c_str(), grouped(value), 1, nullptr, value});
  }
  rows.insert(rows.end(),
              {count("handler errors", m.handler_errors, 0, "handler_errors"),
               count("handler timeouts", m.timeouts, 0, "handler_timeouts"),
               count("store errors", m.store_errors, 0, "store_errors"),
               count("transport errors", m.transport_errors, 0, "transport_errors"),
               count("in-flight peak", static_cast<std::uint64_t>(m.in_flight_peak), 0,
                     "in_flight_peak")});
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f s", elapsed);
  rows.push_back({"elapsed", buf, 0, "elapsed_s", elapsed});
  rows.push_back(count("throughput (msgs/s)", static_cast<std::uint64_t>(rate), 0,
                       "settled_per_s"));
  rows.push_back(count("latency p50 (us)", m.p50_us, 0, "latency_p50_us"));
  rows.push_back(count("latency p99 (us)", m.p99_us, 0, "latency_p99_us"));
  double rss_mib = static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0);
  std::snprintf(buf, sizeof buf, "%.1f MiB", rss_mib);
  rows.push_back({"peak RSS", buf, 0, "peak_rss_mib", rss_mib});
  std::string drain = exit.drained ? "complete"
                                   : "handed back " + grouped(exit.handed_back) +
                                         (exit.abandoned > 0
                                              ? ", left unsettled " + grouped(exit.abandoned)
                                              : std::string{});
  if (json_) {
    nlohmann::json s = {{"time", utc_now()}, {"msg", "summary"}};
    for (const auto& r : rows) {
      if (r.json_key != nullptr) {
        s[r.json_key] = r.value;
      } else {
        s["transport"][r.name] = r.value;
      }
    }
    s["drain"] = drain;
    if (!exit.failure.empty()) {
      s["failure"] = exit.failure;
    }
    std::printf("%s\n", s.dump().c_str());
  } else {
    std::printf("mailroom run summary\n");
    for (const auto& r : rows) {
      std::printf("  %*s%-*s %15s\n", 2 * r.depth, "", 26 - 2 * r.depth, r.name,
                  r.text.c_str());
    }
    std::printf("  %-26s %15s\n", "drain", drain.c_str());
    if (!exit.failure.empty()) {
      std::printf("  %-26s %s\n", "stopped because", exit.failure.c_str());
    }
  }
  std::fflush(stdout);
}

} // namespace mailroom
