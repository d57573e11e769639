// mailroom_bench: the engine's end-to-end throughput beside CAF's bare
// ceilings, on this machine, in one run.
//
//   mailroom_bench [all] [--messages N] [--max-in-flight a,b,c] [--workers W] ...
//       runs every configuration, each in a child process of its own, prints
//       the table, writes bench/out/results.json and draws throughput.png
//   mailroom_bench engine     --messages N --max-in-flight M [...]   one engine run
//   mailroom_bench long-lived --messages N --window M [--actors 8]   one ceiling
//   mailroom_bench spawn      --messages N --window M                one ceiling
//   mailroom_bench redis | handlers | kafka [...]   the Redis, handler-latency and
//       Kafka benchmarks (each starts what it needs; see bench/README.md)
//
// The three single-run subcommands print one JSON line on stdout; `all`
// re-executes this binary with them (so each peak RSS is its own).
// See bench/README.md.

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "caf_ceiling.hpp"
#include "child_report.hpp"
#include "core/engine_config.hpp"
#include "engine_throughput.hpp"
#include "handler_latency.hpp"
#ifdef MAILROOM_WITH_SQS
#include "sqs_bench.hpp"
#endif
#ifdef MAILROOM_WITH_KAFKA
#include "kafka_bench.hpp"
#include "kafka_engine_run.hpp"
#include "kafka_raw_consumer.hpp"
#include "kafka_run.hpp"
#endif
#include "machine_info.hpp"
#include "options.hpp"
#include "redis_bench.hpp"
#include "steps_bench.hpp"
#include "report.hpp"

namespace mailroom::bench {
namespace {

using nlohmann::json;

const char* usage =
    "usage: mailroom_bench [all] [options]          run everything, print the table,\n"
    "                                               write results.json and throughput.png\n"
    "       mailroom_bench engine|long-lived|spawn [options]   one run, one JSON line\n"
    "\n"
    "options of `all` (defaults in brackets):\n"
    "  --messages N            messages per configuration [2000000]\n"
    "  --max-in-flight a,b,c   max_in_flight values (ceiling windows) [256,1024,4096,16384]\n"
    "  --workers W             engine.workers [engine default]\n"
    "  --batch-size B          engine.batch_size [engine default]\n"
    "  --flat-messages N       messages of the RSS-flatness run, 0 skips it [10000000]\n"
    "  --flat-max-in-flight M  max_in_flight of that run [4096]\n"
    "  --actors K              pool size of the long-lived ceiling [8]\n"
    "  --no-spawn              skip the spawn-per-message ceiling\n"
    "  --repeat R              run each configuration R times, keep the fastest [1]\n"
    "  --ceiling-repeat R      same for the long-lived ceiling (cheap) [max(3, R)]\n"
    "  --in-flight-delay-ms D  dedupe.in_flight_delay [10]\n"
    "  --result-ttl-ms T       dedupe.result_ttl [2000]\n"
    "  --capacity C            memory transport capacity [65536]\n"
    "  --duplicate-ratio-pct P generator duplicates, percent [5]\n"
    "  --timeout-s S           give up on a configuration after S seconds [60 + N/20000]\n"
    "  --out DIR               output directory [<source>/bench/out]\n"
    "  --no-plot               do not run gnuplot\n"
    "single runs take --messages, --max-in-flight / --window, and the engine options above,\n"
    "plus --sample-ms (RSS sampling period) and --samples (print every sample);\n"
    "engine --redis-port P dedupes through a redis_idempotency_store on 127.0.0.1:P.\n"
    "\n"
    "       mailroom_bench redis [--claims 500k] [--depth 256] [--messages 200k]\n"
    "                            [--max-in-flight 1024] [--engine-messages 200k] [--repeat 3]\n"
    "                            [--keyspace-small 50k] [--keyspace-large 2M]\n"
    "                            [--timeout-s 180] [--out DIR]\n"
    "           starts its own redis-server and compares the Redis adapters with Redis itself\n"
    "           (redis-benchmark, a raw hiredis stream loop); writes <out>/redis.json\n"
    "       mailroom_bench steps [--messages 20000] [--steps 1,3,10] [--repeat 3]\n"
    "                      durable steps on Redis: batch vs per-step checkpoints vs none\n"
    "       mailroom_bench redis-claims|redis-raw-stream|redis-engine-stream --port P\n"
    "           [--messages N] [--batch 256] [--max-in-flight 1024] [--name S]\n"
    "           [--redis-dedupe]   one run (raw: plus SET NX PX GET per entry; engine:\n"
    "           dedupe, sweeper and attempt log on that Redis)\n"
    "\n"
    "       mailroom_bench handlers [--seconds 2] [--out DIR]\n"
    "           handlers that take time: blocking 0/1/10 ms and async 10/50 ms at several\n"
    "           workers and max_in_flight, beside W/L (M/L) and a raw baseline;\n"
    "           writes <out>/handlers.json\n"
    "       mailroom_bench handler-latency-one [--async] --latency-us L --workers W\n"
    "           --max-in-flight M --messages N [--rate R]   one run\n"
    "\n"
    "       mailroom_bench sqs [--messages 20000] [--receivers 4] [--repeat 3]\n"
    "                          [--timeout-s 300] [--out DIR]\n"
    "           starts ElasticMQ and compares the engine over sqs_transport (no-op, dedupe\n"
    "           off) with a raw ReceiveMessage(10) + DeleteMessageBatch loop on the same\n"
    "           client code, interleaved on fresh pre-filled queues; writes <out>/sqs.json\n"
    "       mailroom_bench sqs-raw|sqs-engine --endpoint E --queue-url U [--dlq-url D]\n"
    "           [--messages N] [--receivers R]   one run\n"
    "       mailroom_bench kafka [--records 1M] [--partitions 4] [--record-bytes 100]\n"
    "                            [--repeat 3] [--rate 20000] [--seconds 10] [--warmup-s 1]\n"
    "                            [--no-latency] [--no-redis] [--timeout-s 300] [--out DIR]\n"
    "                            [--no-plot] [--ordering per_partition|per_key|unordered]\n"
    "                            [--buffer N (buffer_per_partition)]\n"
    "           starts its own Kafka broker and redis-server, pre-fills a topic and compares\n"
    "           the engine over kafka_transport (dedupe off, and Redis dedupe) with a raw\n"
    "           librdkafka consumer: throughput (best/median of --repeat), then end-to-end\n"
    "           latency at --rate; writes <out>/kafka.json and kafka.png\n"
    "       mailroom_bench kafka-raw|kafka-engine --brokers B --topic T --group G\n"
    "           [--partitions 4] [--records N] [--rate R --seconds S --warmup-s W]\n"
    "           [--record-bytes 100] [--redis-port P] [--timeout-s 300]   one run\n";

void quiet_logging() {
  auto logger = spdlog::stderr_color_mt("bench");
  logger->set_level(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

engine_run_settings engine_settings_from(options& o) {
  engine_run_settings s;
  s.messages = o.u64("messages", s.messages);
  s.max_in_flight = static_cast<std::uint32_t>(o.u64("max-in-flight", s.max_in_flight));
  s.workers = static_cast<std::uint32_t>(o.u64("workers", 0));
  s.batch_size = static_cast<std::uint32_t>(o.u64("batch-size", 0));
  s.capacity = o.u64("capacity", s.capacity);
  s.duplicate_ratio = static_cast<double>(o.u64("duplicate-ratio-pct", 5)) / 100.0;
  s.result_ttl = std::chrono::milliseconds{o.u64("result-ttl-ms", 2000)};
  s.in_flight_delay = std::chrono::milliseconds{o.u64("in-flight-delay-ms", 10)};
  s.sample_interval = std::chrono::milliseconds{o.u64("sample-ms", 100)};
  s.timeout = std::chrono::seconds{o.u64("timeout-s", 600)};
  s.keep_samples = o.flag("samples");
  s.redis_port = static_cast<int>(o.u64("redis-port", 0));
  return s;
}

ceiling_settings ceiling_settings_from(options& o) {
  ceiling_settings s;
  s.messages = o.u64("messages", s.messages);
  s.window = o.u64("window", s.window);
  s.actors = static_cast<std::uint32_t>(o.u64("actors", s.actors));
  if (s.window == 0 || s.actors == 0) {
    throw std::invalid_argument("--window and --actors must be > 0");
  }
  return s;
}

// Runs `kind` `times` times and keeps the fastest run that passed its check
// (the first failure when none passed); "attempts" lists every msgs/s.
json best_of(const std::string& kind, const std::vector<std::string>& args,
             std::chrono::seconds timeout, std::uint64_t times) {
  json best;
  json attempts = json::array();
  for (std::uint64_t i = 0; i < std::max<std::uint64_t>(times, 1); ++i) {
    auto r = run_report_child(kind, args, timeout);
    bool ok = r.value("check", std::string{}) == "ok";
    attempts.push_back(ok ? r["msgs_per_s"] : json(r["check"]));
    bool best_ok = !best.is_null() && best.value("check", std::string{}) == "ok";
    if (best.is_null() || (ok && (!best_ok || r["msgs_per_s"].get<double>() >
                                                  best["msgs_per_s"].get<double>()))) {
      best = std::move(r);
    }
  }
  best["attempts"] = attempts;
  return best;
}

void progress(const std::string& what, const json& r) {
  char buf[256];
  double rate = r.contains("msgs_per_s") ? r["msgs_per_s"].get<double>() : 0.0;
  double secs = r.contains("seconds") ? r["seconds"].get<double>() : 0.0;
  std::snprintf(buf, sizeof buf, "bench: %-28s %12.0f msgs/s  %7.2f s  %s\n", what.c_str(), rate,
                secs, r.value("check", std::string{"?"}).c_str());
  std::cerr << buf << std::flush;
}

int run_all(options& o) {
  const auto messages = o.u64("messages", 2000000);
  const auto mifs = o.u64_list("max-in-flight", {256, 1024, 4096, 16384});
  const auto workers = o.u64("workers", 0);
  const auto batch = o.u64("batch-size", 0);
  const auto flat_messages = o.u64("flat-messages", 10000000);
  const auto flat_mif = o.u64("flat-max-in-flight", 4096);
  const auto actors = o.u64("actors", 8);
  const bool spawn = !o.flag("no-spawn");
  const auto delay = o.u64("in-flight-delay-ms", 10);
  const auto ttl = o.u64("result-ttl-ms", 2000);
  const auto capacity = o.u64("capacity", 65536);
  const auto dup_pct = o.u64("duplicate-ratio-pct", 5);
  // A run slower than 20k msgs/s is broken, not slow: give up on it.
  const auto timeout_given = o.u64("timeout-s", 0);
  auto timeout_for = [&](std::uint64_t n) {
    return std::chrono::seconds{timeout_given ? timeout_given : 60 + n / 20000};
  };
  const auto timeout = timeout_for(messages);
  const auto repeat = o.u64("repeat", 1);
  const auto ceiling_repeat = std::max(repeat, o.u64("ceiling-repeat", 3));
  const auto out_dir = o.str("out", std::string{MAILROOM_BENCH_DIR} + "/out");
  const bool plot = !o.flag("no-plot");
  o.check_unknown();

  json results;
  results["machine"] = machine_info();
  results["settings"] = {
      {"messages", messages},
      {"max_in_flight", mifs},
      {"workers", workers},
      {"workers_effective",
       std::to_string(workers ? workers : engine_settings{}.workers)},
      {"batch_size", batch ? batch : engine_settings{}.batch_size},
      {"flat_messages", flat_messages},
      {"flat_max_in_flight", flat_mif},
      {"long_lived_actors", actors},
      {"repeat", repeat},
      {"long_lived_repeat", ceiling_repeat},
      {"spawn_ceiling", spawn ? "window = max_in_flight actors alive at once" : "skipped"},
      {"duplicate_ratio", static_cast<double>(dup_pct) / 100.0},
      {"poison_ratio", 0},
      {"flaky_ratio", 0},
      {"in_flight_delay_ms", delay},
      {"result_ttl_ms", ttl},
      {"capacity", capacity},
      {"handler", "noop"},
      {"dedupe", true}};

  auto engine_args = [&](std::uint64_t n, std::uint64_t mif) {
    // The child gives up (and reports) before the parent would kill it.
    auto child_timeout = std::max<long>(1, static_cast<long>(timeout_for(n).count()) * 3 / 4);
    std::vector<std::string> a = {"--messages",            std::to_string(n),
                                  "--max-in-flight",       std::to_string(mif),
                                  "--in-flight-delay-ms",  std::to_string(delay),
                                  "--result-ttl-ms",       std::to_string(ttl),
                                  "--capacity",            std::to_string(capacity),
                                  "--duplicate-ratio-pct", std::to_string(dup_pct),
                                  "--timeout-s",           std::to_string(child_timeout)};
    if (workers) {
      a.insert(a.end(), {"--workers", std::to_string(workers)});
    }
    if (batch) {
      a.insert(a.end(), {"--batch-size", std::to_string(batch)});
    }
    return a;
  };

  // Engine and ceilings alternate per max_in_flight, so a change in the
  // machine's load (it is shared) shows in both rather than in one.
  results["runs"] = json::array();
  for (auto mif : mifs) {
    json run;
    run["max_in_flight"] = mif;
    auto tag = " mif=" + std::to_string(mif);
    run["engine"] = best_of("engine", engine_args(messages, mif), timeout, repeat);
    progress("engine" + tag, run["engine"]);
    std::vector<std::string> ceiling = {"--messages", std::to_string(messages), "--window",
                                        std::to_string(mif), "--actors", std::to_string(actors)};
    run["long_lived"] = best_of("long-lived", ceiling, timeout, ceiling_repeat);
    progress("CAF long-lived" + tag, run["long_lived"]);
    if (spawn) {
      ceiling.resize(4); // the spawn ceiling has no pool
      run["spawn"] = best_of("spawn", ceiling, timeout, repeat);
      progress("CAF spawn" + tag, run["spawn"]);
    }
    auto ratio = [&](const char* key) -> json {
      if (!run.contains(key) || run["engine"].value("check", "") != "ok" ||
          run[key].value("check", "") != "ok" || run[key]["msgs_per_s"].get<double>() <= 0) {
        return nullptr;
      }
      return run["engine"]["msgs_per_s"].get<double>() / run[key]["msgs_per_s"].get<double>();
    };
    run["ratio_long_lived"] = ratio("long_lived");
    run["ratio_spawn"] = ratio("spawn");
    results["runs"].push_back(run);
  }

  if (flat_messages > 0) {
    auto a = engine_args(flat_messages, flat_mif);
    a.insert(a.end(), {"--sample-ms", "250", "--samples"});
    results["flat"] = run_report_child("engine", a, timeout_for(flat_messages));
    progress("flat RSS mif=" + std::to_string(flat_mif), results["flat"]);
  }

  {
    std::ifstream in{"/proc/loadavg"};
    std::string load;
    std::getline(in, load);
    results["machine"]["loadavg_at_end"] = load;
  }
  evaluate_targets(results);
  auto chart = write_outputs(results, out_dir, plot);
  print_table(results, std::cout);
  std::cout << "\nresults: " << out_dir << "/results.json\n";
  if (!chart.empty()) {
    std::cout << "chart:   " << chart << "\n";
  }
  bool all_ok = true;
  for (auto& run : results["runs"]) {
    for (auto* key : {"engine", "long_lived", "spawn"}) {
      if (run.contains(key) && run[key].value("check", "") != "ok") {
        all_ok = false;
      }
    }
  }
  if (results.contains("flat") && results["flat"].value("check", "") != "ok") {
    all_ok = false;
  }
  if (!all_ok) {
    std::cout << "\nbench: SOME RUNS FAILED THEIR CHECK (see the check column)\n";
  }
  return all_ok ? 0 : 1;
}

} // namespace
} // namespace mailroom::bench

int main(int argc, char** argv) {
  using namespace mailroom::bench;
  std::string cmd = "all";
  int first = 1;
  if (argc > 1 && argv[1][0] != '-') {
    cmd = argv[1];
    first = 2;
  }
  try {
    if (cmd == "help" || (argc > 1 && (std::string{argv[1]} == "--help" ||
                                       std::string{argv[1]} == "-h"))) {
      std::cout << usage;
      return 0;
    }
    options o{argc, argv, first};
    if (cmd == "all") {
      return run_all(o);
    }
    if (cmd == "redis") {
      quiet_logging();
      return run_redis_all(o);
    }
    if (cmd == "steps") {
      quiet_logging();
      return run_steps_all(o);
    }
    if (cmd == "handlers") {
      quiet_logging();
      return run_handler_latency_all(o);
    }
#ifdef MAILROOM_WITH_SQS
    if (cmd == "sqs") {
      quiet_logging();
      try {
        return run_sqs_all(o);
      } catch (const std::runtime_error& e) {
        std::cerr << "mailroom_bench sqs: " << e.what() << "\n";
        return 2;
      }
    }
#endif
#ifdef MAILROOM_WITH_KAFKA
    if (cmd == "kafka") {
      quiet_logging();
      try {
        return run_kafka_all(o);
      } catch (const std::runtime_error& e) {
        std::cerr << "mailroom_bench kafka: " << e.what() << "\n";
        return 2;
      }
    }
#endif
    quiet_logging();
    nlohmann::json r;
    if (cmd == "engine") {
      auto s = engine_settings_from(o);
      o.check_unknown();
      r = run_engine(s);
    } else if (cmd == "handler-latency-one") {
      auto s = latency_settings_from(o);
      o.check_unknown();
      r = run_handler_latency(s);
#ifdef MAILROOM_WITH_SQS
    } else if (cmd == "sqs-raw" || cmd == "sqs-engine") {
      auto s = sqs_run_settings_from(o);
      o.check_unknown();
      try {
        r = cmd == "sqs-raw" ? run_sqs_raw(s) : run_sqs_engine(s);
      } catch (const std::runtime_error& e) {
        r = {{"kind", cmd}, {"check", std::string{"FAILED: "} + e.what()}};
      }
#endif
#ifdef MAILROOM_WITH_KAFKA
    } else if (cmd == "kafka-raw" || cmd == "kafka-engine") {
      auto s = kafka_run_settings_from(o);
      o.check_unknown();
      try {
        r = cmd == "kafka-raw" ? run_kafka_raw(s) : run_kafka_engine(s);
      } catch (const std::runtime_error& e) {
        r = {{"kind", cmd}, {"group", s.group}, {"check", std::string{"FAILED: "} + e.what()}};
      }
#endif
    } else if (cmd == "long-lived" || cmd == "spawn") {
      auto s = ceiling_settings_from(o);
      o.check_unknown();
      r = cmd == "spawn" ? run_spawn_ceiling(s) : run_long_lived_ceiling(s);
    } else if (cmd == "redis-claims" || cmd == "redis-raw-stream" ||
               cmd == "redis-engine-stream") {
      redis_run_settings s;
      s.port = static_cast<int>(o.u64("port", 0));
      s.messages = o.u64("messages", s.messages);
      s.batch = static_cast<std::uint32_t>(o.u64("batch", s.batch));
      s.max_in_flight = static_cast<std::uint32_t>(o.u64("max-in-flight", s.max_in_flight));
      s.name = o.str("name", cmd);
      s.timeout = std::chrono::seconds{o.u64("timeout-s", 120)};
      s.redis_dedupe = o.flag("redis-dedupe");
      o.check_unknown();
      if (s.port <= 0 || s.batch == 0) {
        throw std::invalid_argument("--port and --batch must be > 0");
      }
      r = cmd == "redis-claims"       ? run_redis_claims(s)
          : cmd == "redis-raw-stream" ? run_redis_raw_stream(s)
                                      : run_redis_engine_stream(s);
    } else {
      std::cerr << "mailroom_bench: unknown subcommand '" << cmd << "'\n" << usage;
      return 2;
    }
    std::cout << r.dump() << std::endl;
    return r.value("check", std::string{}) == "ok" ? 0 : 1;
  } catch (const std::invalid_argument& e) {
    std::cerr << "mailroom_bench: " << e.what() << "\n" << usage;
    return 2;
  }
}
