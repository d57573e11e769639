#include "handler_latency.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include <mailroom/engine.hpp>

#include "child_process.hpp"
#include "core/process_stats.hpp"
#include "cpu_time.hpp"
#include "machine_info.hpp"
#include "options.hpp"
#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"
#include "tests/support/timer_thread.hpp"
#include "transports/memory/memory_transport.hpp"

namespace mailroom::bench {

namespace {

using nlohmann::json;
using steady = std::chrono::steady_clock;

double seconds(steady::duration d) {
  return std::chrono::duration<double>(d).count();
}

double ideal_rate(const latency_run_settings& s) {
  if (s.latency.count() == 0) {
    return 0; // the no-op: bounded by CPU, no ideal
  }
  double per_s = 1e6 / static_cast<double>(s.latency.count());
  return s.async ? per_s * s.max_in_flight
                 : per_s * std::min<std::uint32_t>(s.workers, s.max_in_flight);
}

// Raw blocking baseline: W threads take messages from one counter and sleep
// L each, as a thread pool without the engine would.
double raw_blocking(const latency_run_settings& s) {
  std::atomic<std::int64_t> left{static_cast<std::int64_t>(s.messages)};
  auto t0 = steady::now();
  std::vector<std::thread> pool;
  for (std::uint32_t i = 0; i < std::min(s.workers, s.max_in_flight); ++i) {
    pool.emplace_back([&] {
      while (left.fetch_sub(1) > 0) {
        std::this_thread::sleep_for(s.latency);
      }
    });
  }
  for (auto& t : pool) {
    t.join();
  }
  return static_cast<double>(s.messages) / seconds(steady::now() - t0);
}

// Raw asynchronous baseline: M calls outstanding at once on one timer thread,
// each completion starting the next, as an async client alone would do.
double raw_async(const latency_run_settings& s) {
  mailroom::testing::timer_thread timers;
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> issued{0};
  std::function<void()> complete = [&] {
    done.fetch_add(1);
    if (issued.fetch_add(1) < s.messages) {
      timers.after(s.latency, complete);
    }
  };
  auto t0 = steady::now();
  for (std::uint32_t i = 0; i < s.max_in_flight && issued.fetch_add(1) < s.messages; ++i) {
    timers.after(s.latency, complete);
  }
  while (done.load() < s.messages) {
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  return static_cast<double>(s.messages) / seconds(steady::now() - t0);
}

// Publishes `n` messages, at `rate` per second when > 0 (in 1 ms steps), else
// as fast as the transport takes them.
void publish(memory_transport& t, std::uint64_t n, double rate) {
  auto make = [](std::uint64_t i) {
    envelope m;
    m.id = std::to_string(i);
    m.topic = "work";
    m.payload = "{\"n\":" + m.id + "}";
    return m;
  };
  auto t0 = steady::now();
  std::uint64_t sent = 0;
  while (sent < n) {
    std::uint64_t due = n;
    if (rate > 0) {
      due = std::min<std::uint64_t>(
          n, static_cast<std::uint64_t>(seconds(steady::now() - t0) * rate) + 1);
    }
    std::vector<envelope> batch;
    for (; sent < due && batch.size() < 1024; ++sent) {
      batch.push_back(make(sent));
    }
    if (!batch.empty() && !t.publish_batch(std::move(batch))) {
      return;
    }
    if (rate > 0 && sent >= due) {
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
  }
  t.close_input();
}

handler_registry handlers_for(const latency_run_settings& s,
                              mailroom::testing::timer_thread& timers) {
  handler_registry h;
  auto latency = s.latency;
  if (s.async) {
    h.set_async_fallback([&timers, latency](const envelope&, handler_context&,
                                            completion done) {
      timers.after(latency, [done] { done(outcome::ok()); });
    });
  } else {
    h.set_fallback([latency](const envelope&, handler_context&) {
      if (latency.count() > 0) {
        std::this_thread::sleep_for(latency);
      }
      return outcome::ok();
    });
  }
  return h;
}

json run_engine_once(const latency_run_settings& s) {
  memory_transport_settings ts;
  ts.capacity = 65536;
  auto transport = std::make_shared<memory_transport>(ts);
  mailroom::testing::timer_thread timers;
  engine_parts parts;
  parts.transport = transport;
  parts.idempotency = std::make_shared<memory_idempotency_store>();
  parts.claims = std::make_shared<memory_claim_store>();
  parts.handlers = handlers_for(s, timers);
  engine_config cfg;
  cfg.engine.workers = s.workers;
  cfg.engine.max_in_flight = s.max_in_flight;
  cfg.engine.handler_timeout = std::chrono::milliseconds{10000};
  cfg.dedupe.result_ttl = std::chrono::milliseconds{2000};
  engine e{cfg, std::move(parts)};

  auto cpu0 = cpu_time::now();
  auto t0 = steady::now();
  e.start();
  std::thread publisher([&] { publish(*transport, s.messages, s.rate); });
  bool finished = e.wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(s.timeout));
  auto t1 = steady::now();
  auto cpu1 = cpu_time::now();
  if (!finished) {
    (void)transport->close(); // wakes the publisher; the run failed anyway
  }
  publisher.join();
  e.stop();
  auto m = e.metrics();
  json r;
  r["msgs_per_s"] = static_cast<double>(m.acked) / seconds(t1 - t0);
  r["seconds"] = seconds(t1 - t0);
  r["p50_us"] = m.p50_us;
  r["p99_us"] = m.p99_us;
  r["cpu"] = cpu_report(cpu0, cpu1, m.acked, seconds(t1 - t0));
  r["acked"] = m.acked;
  r["timeouts"] = m.timeouts;
  r["redelivered"] = transport->stats().redelivered_by_timeout;
  r["check"] = !finished            ? "TIMEOUT"
               : m.acked != s.messages ? "COUNT MISMATCH: acked " + std::to_string(m.acked)
                                       : "ok";
  return r;
}

} // namespace

nlohmann::json run_handler_latency(const latency_run_settings& s) {
  json r;
  r["kind"] = "handler-latency";
  r["handler"] = s.async ? "async" : "blocking";
  r["latency_us"] = s.latency.count();
  r["workers"] = s.workers;
  r["max_in_flight"] = s.max_in_flight;
  r["messages"] = s.messages;
  r["rate"] = s.rate;
  r["ideal_msgs_per_s"] = ideal_rate(s);
  r["engine"] = run_engine_once(s);
  // The baseline only makes sense saturated: a paced run's rate is the pace.
  if (s.latency.count() > 0 && s.rate == 0) {
    r["raw_msgs_per_s"] = s.async ? raw_async(s) : raw_blocking(s);
  }
  r["peak_rss_bytes"] = peak_rss_bytes();
  r["check"] = r["engine"]["check"];
  r["msgs_per_s"] = r["engine"]["msgs_per_s"];
  return r;
}

latency_run_settings latency_settings_from(options& o) {
  latency_run_settings s;
  s.async = o.flag("async");
  s.latency = std::chrono::microseconds{o.u64("latency-us", 0)};
  s.workers = static_cast<std::uint32_t>(o.u64("workers", s.workers));
  s.max_in_flight = static_cast<std::uint32_t>(o.u64("max-in-flight", s.max_in_flight));
  s.messages = o.u64("messages", s.messages);
  s.rate = static_cast<double>(o.u64("rate", 0));
  s.timeout = std::chrono::seconds{o.u64("timeout-s", 120)};
  if (s.workers == 0 || s.max_in_flight == 0 || s.messages == 0) {
    throw std::invalid_argument("--workers, --max-in-flight and --messages must be > 0");
  }
  return s;
}

namespace {

struct planned {
  latency_run_settings s;
  std::string label;
};

std::vector<planned> plan(double seconds_per_run) {
  std::vector<planned> out;
  auto add = [&](bool async, int latency_us, std::uint32_t w, std::uint32_t m,
                 double rate_fraction) {
    latency_run_settings s;
    s.async = async;
    s.latency = std::chrono::microseconds{latency_us};
    s.workers = w;
    s.max_in_flight = m;
    double ideal = ideal_rate(s);
    s.messages = ideal > 0 ? static_cast<std::uint64_t>(std::clamp(
                                 ideal * seconds_per_run * std::max(rate_fraction, 0.5),
                                 200.0, 2e6))
                           : 1000000;
    s.rate = rate_fraction > 0 ? ideal * rate_fraction : 0;
    char label[96];
    std::snprintf(label, sizeof label, "%s L=%gms W=%u M=%u%s", async ? "async" : "blocking",
                  latency_us / 1000.0, w, m, rate_fraction > 0 ? " @50%" : "");
    out.push_back({s, label});
  };
  add(false, 0, 4, 4096, 0);
  for (std::uint32_t w : {4u, 16u}) {
    add(false, 1000, w, 1024, 0);
  }
  for (std::uint32_t w : {4u, 16u, 64u}) {
    add(false, 10000, w, 1024, 0);
  }
  for (std::uint32_t m : {1000u, 4000u}) {
    add(true, 10000, 2, m, 0);
    add(true, 50000, 2, m, 0);
  }
  // Not saturated: half the ideal rate, where p50 should stay near L.
  add(false, 10000, 16, 1024, 0.5);
  add(true, 50000, 2, 4000, 0.5);
  return out;
}

std::string fmt(double v, const char* f = "%.0f") {
  char buf[32];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

} // namespace

int run_handler_latency_all(options& o) {
  const double per_run = static_cast<double>(o.u64("seconds", 2));
  const auto out_dir = o.str("out", std::string{MAILROOM_BENCH_DIR} + "/out");
  o.check_unknown();
  json results;
  results["machine"] = machine_info();
  results["runs"] = json::array();
  bool all_ok = true;
  for (auto& p : plan(per_run)) {
    auto& s = p.s;
    std::vector<std::string> args{"/proc/self/exe",     "handler-latency-one",
                                  "--latency-us",       std::to_string(s.latency.count()),
                                  "--workers",          std::to_string(s.workers),
                                  "--max-in-flight",    std::to_string(s.max_in_flight),
                                  "--messages",         std::to_string(s.messages),
                                  "--rate",             fmt(s.rate)};
    if (s.async) {
      args.push_back("--async");
    }
    auto c = run_child(args, std::chrono::seconds{180});
    json r;
    try {
      r = json::parse(last_json_line(c.out));
    } catch (const std::exception&) {
      r = {{"check", "FAILED: child " + c.how()}};
    }
    r["label"] = p.label;
    all_ok = all_ok && r.value("check", std::string{}) == "ok";
    std::cerr << "bench: " << p.label << "  " << r.value("check", std::string{"?"}) << "\n";
    results["runs"].push_back(r);
  }
  std::filesystem::create_directories(out_dir);
  std::ofstream{out_dir + "/handlers.json"} << results.dump(2) << "\n";

  auto& out = std::cout;
  out << "\nmailroom bench: handlers that take time (memory transport, dedupe on)\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-30s %10s %10s %7s %10s %7s %9s %9s %7s %7s  %s\n",
                "configuration", "msgs/s", "ideal", "÷ideal", "raw", "÷raw", "p50 µs",
                "p99 µs", "CPU µs", "RSS MiB", "check");
  out << line;
  for (auto& r : results["runs"]) {
    if (!r.contains("engine")) {
      out << r["label"].get<std::string>() << "  " << r.value("check", std::string{}) << "\n";
      continue;
    }
    auto& e = r["engine"];
    double rate = e["msgs_per_s"].get<double>();
    double ideal = r["ideal_msgs_per_s"].get<double>();
    double paced = r["rate"].get<double>();
    double raw = r.value("raw_msgs_per_s", 0.0);
    // A paced run is measured against its pace, not the ideal.
    double reference = paced > 0 ? paced : ideal;
    std::snprintf(line, sizeof line,
                  "%-30s %10s %10s %7s %10s %7s %9s %9s %7s %7s  %s\n",
                  r["label"].get<std::string>().c_str(), fmt(rate).c_str(),
                  reference > 0 ? fmt(reference).c_str() : "-",
                  reference > 0 ? fmt(rate / reference, "%.2fx").c_str() : "-",
                  raw > 0 ? fmt(raw).c_str() : "-",
                  raw > 0 ? fmt(rate / raw, "%.2fx").c_str() : "-",
                  fmt(e["p50_us"].get<double>()).c_str(),
                  fmt(e["p99_us"].get<double>()).c_str(),
                  fmt(e["cpu"]["us_per_msg"].get<double>(), "%.1f").c_str(),
                  fmt(r["peak_rss_bytes"].get<double>() / 1048576.0, "%.1f").c_str(),
                  r.value("check", std::string{}).c_str());
    out << line;
  }
  out << "\n(ideal = W/L for blocking, M/L for async; raw = the same waiting without the "
         "engine: W sleeping threads, or M timers outstanding; @50% = published at half "
         "the ideal rate, ideal column = that pace; p50/p99 = receive-to-settle)\n"
         "targets: blocking >= 0.9x W/L for L >= 1 ms; async >= 0.8x M/L until CPU-bound; "
         "p50 <= L + 5 ms when not saturated\n";
  out << "results: " << out_dir << "/handlers.json\n";
  return all_ok ? 0 : 1;
}

} // namespace mailroom::bench
