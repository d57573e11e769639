#include "steps_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cpu_time.hpp"
#include "figures.hpp"
#include "options.hpp"
#include "redis_server_cost.hpp"
#include "rss_sampler.hpp"

#include "mailroom/engine.hpp"
#include "stores/redis/redis_checkpoint_store.hpp"
#include "tests/support/redis_server.hpp"
#include "transports/memory/memory_transport.hpp"

namespace mailroom::bench {

namespace {

enum class variant { baseline, batch, per_step };

const char* name_of(variant v) {
  return v == variant::baseline ? "raw (no checkpoints)"
         : v == variant::batch  ? "batch mode"
                                : "per-step mode";
}

struct run_result {
  double msgs_per_s = 0, cpu_us_per_msg = 0, redis_us_per_msg = 0;
  std::uint64_t p50_us = 0, p99_us = 0, peak_rss_kib = 0;
  bool complete = false;
};

// One engine run over `messages` in-memory messages with `steps` steps each.
run_result run_once(int port, variant v, std::uint64_t messages, int steps, int run) {
  auto transport = std::make_shared<memory_transport>(
      memory_transport_settings{std::chrono::milliseconds{60000}, 1 << 20});
  std::vector<envelope> batch;
  for (std::uint64_t i = 0; i < messages; ++i) {
    envelope m;
    m.id = "m-" + std::to_string(i);
    m.key = m.id;
    m.topic = "orders";
    m.payload = "{\"order\":" + std::to_string(i) + "}";
    batch.push_back(std::move(m));
  }
  (void)transport->publish_batch(std::move(batch));
  transport->close_input();

  engine_config cfg;
  cfg.engine.workers = 8; // each lane waits on Redis round trips
  cfg.engine.max_in_flight = 1024;
  cfg.steps.mode = v == variant::per_step ? step_mode::per_step : step_mode::batch;
  engine_parts parts;
  parts.transport = transport;
  // A step's work: a small result built from the message, as a real step's
  // reply (an id, a status) would be.
  auto work = [](const envelope& m, int i) { return m.id + ":" + std::to_string(i); };
  if (v == variant::baseline) {
    parts.handlers.add("orders", [steps, work](const envelope& m, handler_context&) {
      std::string sink;
      for (int i = 0; i < steps; ++i) {
        sink = work(m, i);
      }
      return sink.empty() ? outcome::retry("?") : outcome::ok();
    });
  } else {
    redis_settings rs;
    rs.port = port;
    rs.key_prefix = "bench" + std::to_string(run) + ":";
    parts.checkpoints = std::make_shared<redis_checkpoint_store>(rs);
    parts.handlers.add_durable("orders", [steps, work](const envelope& m, handler_context& ctx) {
      for (int i = 0; i < steps; ++i) {
        ctx.step("s" + std::to_string(i), [&] { return work(m, i); });
      }
      return outcome::ok();
    });
  }
  auto redis0 = snapshot_redis_server(port);
  rss_sampler rss{std::chrono::milliseconds{100},
                  [] { return std::pair<std::uint64_t, std::int64_t>{0, 0}; }};
  auto cpu0 = cpu_time::now();
  auto t0 = std::chrono::steady_clock::now();
  engine e{cfg, std::move(parts)};
  e.start();
  run_result r;
  r.complete = e.wait_for(std::chrono::minutes{5});
  e.stop();
  auto wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto cpu = cpu_report(cpu0, cpu_time::now(), messages, wall);
  auto redis = redis_server_cost(redis0, snapshot_redis_server(port), messages);
  auto m = e.metrics();
  r.complete = r.complete && m.acked == messages;
  r.msgs_per_s = static_cast<double>(messages) / wall;
  r.cpu_us_per_msg = cpu["us_per_msg"].get<double>();
  r.redis_us_per_msg = redis["cpu_us_per_msg"].get<double>();
  r.p50_us = m.p50_us;
  r.p99_us = m.p99_us;
  for (const auto& sample : rss.finish()) {
    r.peak_rss_kib = std::max<std::uint64_t>(r.peak_rss_kib, sample.rss / 1024);
  }
  return r;
}

} // namespace

int run_steps_all(options& o) {
  const auto messages = o.u64("messages", 20000);
  const auto step_counts = o.u64_list("steps", {1, 3, 10});
  const auto repeat = std::max<std::uint64_t>(1, o.u64("repeat", 3));
  o.check_unknown();
  mailroom::testing::redis_server server;
  std::fprintf(stderr, "bench: redis-server on 127.0.0.1:%d (no persistence), %llu messages\n",
               server.port(), static_cast<unsigned long long>(messages));
  std::map<std::pair<int, int>, std::vector<run_result>> results; // (steps, variant)
  int run = 0;
  for (std::uint64_t r = 0; r < repeat; ++r) {
    for (auto steps : step_counts) {
      for (auto v : {variant::baseline, variant::batch, variant::per_step}) {
        auto res = run_once(server.port(), v, messages, static_cast<int>(steps), ++run);
        std::fprintf(stderr, "bench: run %llu/%llu, %llu steps, %s: %.0f msgs/s%s\n",
                     static_cast<unsigned long long>(r + 1),
                     static_cast<unsigned long long>(repeat),
                     static_cast<unsigned long long>(steps), name_of(v), res.msgs_per_s,
                     res.complete ? "" : " (INCOMPLETE)");
        results[{static_cast<int>(steps), static_cast<int>(v)}].push_back(res);
      }
    }
  }
  std::printf("durable steps on Redis, %llu messages, best / median of %llu\n",
              static_cast<unsigned long long>(messages),
              static_cast<unsigned long long>(repeat));
  std::printf("%-6s %-22s %22s %22s %8s %9s %9s %10s %11s %9s\n", "steps", "variant", "msgs/s",
              "steps/s", "ratio", "p50 us", "p99 us", "CPU us/msg", "redis us/msg",
              "RSS MiB");
  for (auto steps : step_counts) {
    double base_best = 0;
    for (auto v : {variant::baseline, variant::batch, variant::per_step}) {
      auto& runs = results[{static_cast<int>(steps), static_cast<int>(v)}];
      std::vector<double> rates;
      for (auto& x : runs) {
        rates.push_back(x.msgs_per_s);
      }
      auto best_it = std::max_element(runs.begin(), runs.end(), [](auto& a, auto& b) {
        return a.msgs_per_s < b.msgs_per_s;
      });
      double best = best_it->msgs_per_s, med = median(rates);
      if (v == variant::baseline) {
        base_best = best;
      }
      auto pair = [](double a, double b) { return grouped(a) + " / " + grouped(b); };
      std::printf("%-6llu %-22s %22s %22s %7.2fx %9llu %9llu %10.1f %11.1f %9.1f\n",
                  static_cast<unsigned long long>(steps), name_of(v), pair(best, med).c_str(),
                  pair(best * static_cast<double>(steps), med * static_cast<double>(steps))
                      .c_str(),
                  base_best > 0 ? best / base_best : 1.0,
                  static_cast<unsigned long long>(best_it->p50_us),
                  static_cast<unsigned long long>(best_it->p99_us), best_it->cpu_us_per_msg,
                  best_it->redis_us_per_msg,
                  static_cast<double>(best_it->peak_rss_kib) / 1024.0);
    }
  }
  std::printf("ratio: best msgs/s over the raw baseline's best at the same step count "
              "(the cost of durability); redis us/msg: redis-server's CPU per message.\n");
  return 0;
}

} // namespace mailroom::bench
