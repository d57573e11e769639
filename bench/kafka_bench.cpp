#include "kafka_bench.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <hiredis/hiredis.h>

#include "child_process.hpp"
#include "child_report.hpp"
#include "core/engine_config.hpp"
#include "figures.hpp"
#include "kafka_producer.hpp"
#include "kafka_run.hpp"
#include "kafka_topics.hpp"
#include "machine_info.hpp"
#include "options.hpp"
#include "tests/support/kafka_broker.hpp"
#include "tests/support/redis_server.hpp"
#include "transports/kafka/kafka_settings.hpp"

namespace mailroom::bench {
namespace {

using nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr double target_ratio = 0.8;

// The three consumers measured, in the order they run.
struct config {
  const char* key;   // in kafka.json
  const char* kind;  // the single-run subcommand
  const char* label; // in the table and the chart
  bool redis;
};
const config configs[] = {
    {"raw", "kafka-raw", "raw librdkafka consumer", false},
    {"engine", "kafka-engine", "engine, no-op, dedupe off", false},
    {"engine_redis", "kafka-engine", "engine, no-op, Redis dedupe", true},
};

std::string fixed(double v, int decimals, const char* suffix = "") {
  if (!std::isfinite(v)) {
    return "-";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", decimals, v, suffix);
  return buf;
}

bool ok(const json& r) { return r.value("check", std::string{}) == "ok"; }

double num(const json& j, const char* key) {
  auto i = j.find(key);
  return (i != j.end() && i->is_number()) ? i->get<double>() : NAN;
}

double cpu_us(const json& r) { return r.contains("cpu") ? num(r["cpu"], "us_per_msg") : NAN; }

std::string load_average() {
  std::ifstream in{"/proc/loadavg"};
  std::string load;
  std::getline(in, load);
  return load;
}

void flushall(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c != nullptr && c->err == 0) {
    if (auto* reply = static_cast<redisReply*>(redisCommand(c, "FLUSHALL"))) {
      freeReplyObject(reply);
    }
  }
  if (c != nullptr) {
    redisFree(c);
  }
}

// best / median over the attempts of one configuration: the fastest run that
// passed its check, and medians of rate, CPU, RSS and context switches over
// those that passed.
json summary_of(const json& attempts) {
  json best;
  std::vector<double> rates, cpus, rss, csw;
  std::uint64_t failed = 0;
  std::string first_failure;
  for (const auto& r : attempts) {
    if (!ok(r)) {
      if (failed++ == 0) {
        first_failure = r.value("check", std::string{"?"});
      }
      continue;
    }
    rates.push_back(num(r, "msgs_per_s"));
    cpus.push_back(cpu_us(r));
    rss.push_back(num(r, "peak_rss_bytes"));
    csw.push_back(num(r["cpu"], "voluntary_switches_per_msg"));
    if (best.is_null() || num(r, "msgs_per_s") > num(best, "msgs_per_s")) {
      best = r;
    }
  }
  json s;
  s["runs"] = attempts.size();
  s["passed"] = attempts.size() - failed;
  s["best"] = best;
  s["best_msgs_per_s"] = best.is_null() ? json(nullptr) : best["msgs_per_s"];
  auto med = [](const std::vector<double>& v) {
    double m = median(v);
    return std::isfinite(m) ? json(m) : json(nullptr);
  };
  s["median_msgs_per_s"] = med(rates);
  s["median_cpu_us_per_msg"] = med(cpus);
  s["median_peak_rss_bytes"] = med(rss);
  s["median_voluntary_switches_per_msg"] = med(csw);
  s["check"] = failed == 0 ? std::string{"ok"}
                           : std::to_string(failed) + "/" + std::to_string(attempts.size()) +
                                 " FAILED: " + first_failure;
  s["attempts"] = attempts;
  return s;
}

json ratio(const json& a, const json& b, const char* key) {
  double x = num(a, key);
  double y = num(b, key);
  return (std::isfinite(x) && std::isfinite(y) && y > 0) ? json(x / y) : json(nullptr);
}

void print_table(const json& results, std::ostream& os) {
  const auto& m = results["machine"];
  const auto& st = results["settings"];
  const auto& b = results["broker"];
  const auto& f = results["prefill"];
  os << "\nmailroom kafka bench: " << grouped(num(st, "records")) << " records of "
     << st["record_bytes"].get<int>() << " B over " << st["partitions"].get<int>()
     << " partitions, best and median of " << st["repeat"].get<int>()
     << " interleaved runs, each in its own process and consumer group\n"
     << "broker: Apache Kafka " << b.value("version", "?")
     << " (KRaft, one node, -Xmx512m, "
     << "same machine), started in " << fixed(num(b, "start_s"), 1) << " s; pre-fill "
     << fixed(num(f, "seconds"), 1) << " s (" << grouped(num(f, "msgs_per_s"))
     << " records/s, acks=1)\n"
     << "engine: default workers (" << st["engine"]["workers"].get<int>() << "), batch "
     << st["engine"]["batch_size"].get<int>() << ", max_in_flight "
     << st["engine"]["max_in_flight"].get<int>() << ", ordering "
     << st["engine"]["ordering"].get<std::string>() << ", buffer_per_partition "
     << st["engine"]["buffer_per_partition"].get<std::size_t>() << "\n"
     << "machine: " << m.value("cpu_model", "?") << ", " << m.value("nproc", 0)
     << " cores, " << m.value("kernel", "?") << ", " << m.value("build_type", "?") << ", "
     << m.value("allocator", "?") << " malloc, git " << m.value("git_commit", "?")
     << (m.value("git_dirty", false) ? " (dirty)" : "") << ", " << m.value("date", "?")
     << ", load " << m.value("loadavg", "?") << " -> " << m.value("loadavg_at_end", "?")
     << "\n\n";

  char buf[512];
  std::snprintf(buf, sizeof buf, "%-30s %12s %12s %9s %9s %7s %8s %8s %8s  %s\n", "throughput",
                "best msg/s", "median msg/s", "÷raw best", "÷raw med", "join s", "CPU µs",
                "RSS MiB", "csw/msg", "check");
  os << buf;
  const auto& tp = results["throughput"];
  for (const auto& c : configs) {
    if (!tp.contains(c.key)) {
      continue;
    }
    const auto& s = tp[c.key];
    auto rb = tp["ratios"].value(std::string{c.key} + "_best", json(nullptr));
    auto rm = tp["ratios"].value(std::string{c.key} + "_median", json(nullptr));
    const json& best = s["best"];
    std::snprintf(buf, sizeof buf, "%-30s %12s %12s %9s %9s %7s %8s %8s %8s  %s\n", c.label,
                  grouped(num(s, "best_msgs_per_s")).c_str(),
                  grouped(num(s, "median_msgs_per_s")).c_str(),
                  rb.is_number() ? fixed(rb.get<double>(), 2, "x").c_str() : "-",
                  rm.is_number() ? fixed(rm.get<double>(), 2, "x").c_str() : "-",
                  best.is_null() ? "-" : fixed(num(best, "join_s"), 2).c_str(),
                  fixed(num(s, "median_cpu_us_per_msg"), 2).c_str(),
                  fixed(num(s, "median_peak_rss_bytes") / (1024.0 * 1024.0), 1).c_str(),
                  fixed(num(s, "median_voluntary_switches_per_msg"), 3).c_str(),
                  s.value("check", std::string{"-"}).c_str());
    os << buf;
  }
  os << "(msg/s = records / seconds from the first record received to the last one consumed "
        "(raw) or acked (engine):\n without the group join, which `join s` (of the best run) "
        "shows; CPU µs = the child's user + sys per record, from\n before the consumer was "
        "created to the last record; CPU µs, RSS (peak) and csw/msg (voluntary context\n "
        "switches per record) are medians over the runs that passed)\n";
  if (results.contains("targets")) {
    const auto& t = results["targets"];
    os << "\ntarget: engine (dedupe off) >= " << fixed(target_ratio, 1)
       << "x the raw consumer: best " << (t["ratio_best"].is_number()
                                              ? fixed(t["ratio_best"].get<double>(), 2, "x")
                                              : std::string{"-"})
       << ", median "
       << (t["ratio_median"].is_number() ? fixed(t["ratio_median"].get<double>(), 2, "x")
                                         : std::string{"-"})
       << "  " << (t.value("pass", false) ? "PASS" : "MISS") << " (on the best)\n";
  }

  if (results.contains("latency")) {
    const auto& l = results["latency"];
    os << "\nend-to-end latency at " << grouped(num(st, "rate")) << " records/s for "
       << st["seconds"].get<int>() << " s (after a " << st["warmup_s"].get<int>()
       << " s warm-up): producer send stamp -> poll returns it (raw) / handler called "
          "(engine)\n";
    std::snprintf(buf, sizeof buf, "%-30s %9s %9s %9s %14s %14s %8s %8s  %s\n", "latency",
                  "p50 µs", "p99 µs", "max µs", "engine p50 µs", "engine p99 µs", "CPU µs",
                  "RSS MiB", "check");
    os << buf;
    for (const auto& c : configs) {
      if (!l.contains(c.key)) {
        continue;
      }
      const auto& r = l[c.key];
      json lat = r.value("latency", json::object());
      bool engine = r.value("kind", std::string{}) == "kafka-engine";
      std::snprintf(buf, sizeof buf, "%-30s %9s %9s %9s %14s %14s %8s %8s  %s\n", c.label,
                    grouped(num(lat, "p50_us")).c_str(), grouped(num(lat, "p99_us")).c_str(),
                    grouped(num(lat, "max_us")).c_str(),
                    engine ? grouped(num(r, "p50_us")).c_str() : "-",
                    engine ? grouped(num(r, "p99_us")).c_str() : "-", fixed(cpu_us(r), 2).c_str(),
                    fixed(num(r, "peak_rss_bytes") / (1024.0 * 1024.0), 1).c_str(),
                    r.value("check", std::string{"-"}).c_str());
      os << buf;
    }
    os << "(engine p50/p99 = the engine's own receive-to-settle latency; CPU µs includes the "
          "producer thread,\n which runs in the same process; histogram values are within "
          "6 %)\n";
  }
}

// kafka.dat (label, best, median) and kafka.png through bench/kafka.gp.
std::string draw_chart(const json& results, const std::string& dir, bool draw) {
  namespace fs = std::filesystem;
  auto dat = (fs::path{dir} / "kafka.dat").string();
  auto png = (fs::path{dir} / "kafka.png").string();
  {
    std::ofstream out{dat};
    out << "# configuration best_msgs_per_s median_msgs_per_s\n";
    for (const auto& c : configs) {
      if (!results["throughput"].contains(c.key)) {
        continue;
      }
      const auto& s = results["throughput"][c.key];
      auto cell = [&](const char* key) {
        double v = num(s, key);
        return std::isfinite(v) ? fixed(v, 0) : std::string{"?"};
      };
      out << '"' << c.label << "\" " << cell("best_msgs_per_s") << ' '
          << cell("median_msgs_per_s") << '\n';
    }
  }
  if (!draw) {
    return {};
  }
  std::string title;
  for (char ch : "mailroom " + results["machine"].value("git_commit", std::string{}) + ", " +
                     grouped(num(results["settings"], "records")) + " records x " +
                     std::to_string(results["settings"]["record_bytes"].get<int>()) + " B, " +
                     results["machine"].value("cpu_model", std::string{}) + " x" +
                     std::to_string(results["machine"].value("nproc", 0))) {
    if (ch != '\'' && ch != '"' && ch != '\\') {
      title += ch;
    }
  }
  auto r = run_child({"gnuplot", "-e",
                      "datafile='" + dat + "'; outfile='" + png + "'; charttitle='" + title + "'",
                      std::string{MAILROOM_BENCH_DIR} + "/kafka.gp"},
                     std::chrono::seconds{60});
  if (!r.ok()) {
    std::cerr << "bench: gnuplot " << r.how() << ": no chart drawn\n";
    return {};
  }
  return png;
}

void note_run(const std::string& what, const json& r) {
  std::fprintf(stderr, "bench: %-44s %12s msgs/s  %6.2f CPU µs/msg  %s\n", what.c_str(),
               grouped(num(r, "msgs_per_s")).c_str(), cpu_us(r),
               r.value("check", std::string{"?"}).c_str());
}

} // namespace

int run_kafka_all(options& o) {
  const auto records = o.u64("records", 1000000);
  const auto partitions = static_cast<int>(o.u64("partitions", 4));
  const auto record_bytes = o.u64("record-bytes", 100);
  const auto repeat = std::max<std::uint64_t>(1, o.u64("repeat", 3));
  const auto rate = o.u64("rate", 20000);
  const auto seconds = o.u64("seconds", 10);
  const auto warmup_s = o.u64("warmup-s", 1);
  const bool latency = !o.flag("no-latency");
  const bool with_redis = !o.flag("no-redis");
  const auto timeout = std::chrono::seconds{o.u64("timeout-s", 300)};
  const auto out_dir = o.str("out", std::string{MAILROOM_BENCH_DIR} + "/out");
  const bool plot = !o.flag("no-plot");
  const auto ordering = o.str("ordering", "per_partition");
  const auto buffer = static_cast<std::size_t>(o.u64("buffer", 0));
  o.check_unknown();
  if (partitions <= 0 || records == 0 || record_bytes < 48 || rate == 0 || seconds == 0) {
    throw std::invalid_argument(
        "--partitions, --records, --rate and --seconds must be > 0, --record-bytes >= 48");
  }
  const auto t_begin = steady::now();

  json results;
  results["machine"] = machine_info();
  results["machine"]["loadavg"] = load_average();
  std::cerr << "bench: load average " << load_average() << "\n";

  // The servers. A missing java, jar directory or kcat is the broker
  // helper's exception, which names what to install.
  std::unique_ptr<testing::kafka_broker> broker;
  std::unique_ptr<testing::redis_server> redis;
  try {
    std::cerr << "bench: starting a Kafka " << testing::kafka_broker::version
              << " broker (KRaft, one node; ~5-10 s)\n";
    broker = std::make_unique<testing::kafka_broker>();
    if (with_redis) {
      redis = std::make_unique<testing::redis_server>();
    }
  } catch (const std::exception& e) {
    std::cerr << "mailroom_bench kafka: cannot start the servers: " << e.what() << "\n";
    return 2;
  }
  const auto brokers = broker->bootstrap();
  const int redis_port = redis ? redis->port() : 0;
  std::cerr << "bench: broker at " << brokers << " (started in "
            << fixed(static_cast<double>(broker->start_time().count()) / 1000.0, 1) << " s)";
  if (redis) {
    std::cerr << ", redis-server on 127.0.0.1:" << redis_port << " (no persistence)";
  }
  std::cerr << "\n";
  results["broker"] = {{"version", testing::kafka_broker::version},
                       {"bootstrap", brokers},
                       {"start_s", static_cast<double>(broker->start_time().count()) / 1000.0}};

  const std::string topic = "bench";
  std::vector<std::pair<std::string, int>> topics{{topic, partitions}, {topic + ".dlq", 1}};
  for (const auto& c : configs) {
    if (latency && (with_redis || !c.redis)) {
      topics.emplace_back(std::string{"latency-"} + c.key, partitions);
      topics.emplace_back(std::string{"latency-"} + c.key + ".dlq", 1);
    }
  }
  create_topics(brokers, topics);

  auto fill = fill_topic(brokers, topic, partitions, records, record_bytes);
  auto filled = offset_sum(end_offsets(brokers, topic, partitions));
  results["prefill"] = {{"records", records},
                        {"delivered", fill.delivered},
                        {"failed", fill.failed},
                        {"end_offsets_sum", filled},
                        {"seconds", fill.seconds},
                        {"msgs_per_s", static_cast<double>(records) / fill.seconds}};
  if (filled != records || fill.failed != 0) {
    std::cerr << "mailroom_bench kafka: the pre-fill wrote " << filled << " records, not "
              << records << " (" << fill.failed << " delivery failures)\n";
    return 1;
  }

  kafka_run_settings base;
  base.brokers = brokers;
  base.partitions = partitions;
  base.records = records;
  base.record_bytes = record_bytes;
  base.timeout = timeout;
  base.ordering = ordering;
  base.buffer_per_partition = buffer;
  const auto parent_timeout = timeout + std::chrono::seconds{60};
  auto settings_for = [&](const config& c, const std::string& group) {
    auto s = base;
    s.topic = topic;
    s.group = group;
    s.redis_port = c.redis ? redis_port : 0;
    return s;
  };

  // Interleaved, so a change in the shared machine's load hits all three.
  std::map<std::string, json> attempts;
  for (std::uint64_t i = 0; i < repeat; ++i) {
    for (const auto& c : configs) {
      if (c.redis && !with_redis) {
        continue;
      }
      auto group = std::string{c.key} + "-" + std::to_string(i + 1);
      std::fprintf(stderr, "bench: run %llu/%llu: %s (group %s)\n",
                   static_cast<unsigned long long>(i + 1),
                   static_cast<unsigned long long>(repeat), c.label, group.c_str());
      auto r = run_report_child(c.kind, kafka_run_args(settings_for(c, group)), parent_timeout);
      note_run(c.label, r);
      attempts[c.key].push_back(r);
      if (c.redis) {
        flushall(redis_port);
      }
    }
  }
  json& tp = results["throughput"];
  for (const auto& c : configs) {
    if (attempts.count(c.key)) {
      tp[c.key] = summary_of(attempts[c.key]);
    }
  }
  tp["ratios"] = json::object();
  for (const auto& c : configs) {
    if (tp.contains(c.key) && std::string{c.key} != "raw") {
      tp["ratios"][std::string{c.key} + "_best"] =
          ratio(tp[c.key], tp["raw"], "best_msgs_per_s");
      tp["ratios"][std::string{c.key} + "_median"] =
          ratio(tp[c.key], tp["raw"], "median_msgs_per_s");
    }
  }
  tp["ratios"]["raw_best"] = tp["raw"]["best"].is_null() ? json(nullptr) : json(1.0);
  tp["ratios"]["raw_median"] = tp["raw"]["best"].is_null() ? json(nullptr) : json(1.0);
  auto rb = tp["ratios"].value("engine_best", json(nullptr));
  results["targets"] = {{"engine_over_raw_at_least", target_ratio},
                        {"ratio_best", rb},
                        {"ratio_median", tp["ratios"].value("engine_median", json(nullptr))},
                        {"pass", rb.is_number() && rb.get<double>() >= target_ratio}};

  if (latency) {
    for (const auto& c : configs) {
      if (c.redis && !with_redis) {
        continue;
      }
      auto s = settings_for(c, std::string{"latency-"} + c.key);
      s.topic = std::string{"latency-"} + c.key;
      s.rate = rate;
      s.seconds = seconds;
      s.warmup_s = warmup_s;
      std::fprintf(stderr, "bench: latency: %s at %s records/s for %llu+%llu s\n", c.label,
                   grouped(static_cast<double>(rate)).c_str(),
                   static_cast<unsigned long long>(warmup_s),
                   static_cast<unsigned long long>(seconds));
      auto r = run_report_child(c.kind, kafka_run_args(s), parent_timeout);
      if (r.contains("latency")) {
        std::fprintf(stderr, "bench: %-44s p50 %s µs  p99 %s µs  %s\n", c.label,
                     grouped(num(r["latency"], "p50_us")).c_str(),
                     grouped(num(r["latency"], "p99_us")).c_str(),
                     r.value("check", std::string{"?"}).c_str());
      } else {
        note_run(c.label, r);
      }
      results["latency"][c.key] = r;
      if (c.redis) {
        flushall(redis_port);
      }
    }
  }

  results["settings"] = {
      {"records", records},
      {"record_bytes", record_bytes},
      {"partitions", partitions},
      {"repeat", repeat},
      {"rate", rate},
      {"seconds", seconds},
      {"warmup_s", warmup_s},
      {"timeout_s", timeout.count()},
      {"raw", "rd_kafka_consumer_poll, enable.auto.commit=false, offsets stored on poll, "
              "async rd_kafka_commit every 1 s or 10,000 records, final sync commit"},
      {"engine",
       {{"workers", engine_settings{}.workers},
        {"batch_size", engine_settings{}.batch_size},
        {"max_in_flight", engine_settings{}.max_in_flight},
        {"ordering", base.ordering},
        {"handler", "noop"},
        {"commit_interval_ms", kafka_settings{}.commit_interval.count()},
        {"commit_max_messages", kafka_settings{}.commit_max_messages},
        {"buffer_per_partition", base.buffer_per_partition > 0
                                     ? base.buffer_per_partition
                                     : std::size_t{kafka_settings{}.buffer_per_partition}}}},
      {"engine_redis", "redis_idempotency_store + redis_claim_store + redis_attempt_log, "
                       "dedupe and sweeper on, as dedupe.store = sweeper.store = \"redis\""},
      {"latency_producer", "librdkafka, linger.ms=1, acks=1, paced in 0.5 ms steps, in the "
                           "consumer's process"}};
  results["machine"]["loadavg_at_end"] = load_average();
  results["total_seconds"] = std::chrono::duration<double>(steady::now() - t_begin).count();

  std::filesystem::create_directories(out_dir);
  auto chart = draw_chart(results, out_dir, plot);
  results["outputs"] = {{"json", out_dir + "/kafka.json"},
                        {"data", out_dir + "/kafka.dat"},
                        {"chart", chart}};
  std::ofstream(out_dir + "/kafka.json") << results.dump(2) << "\n";

  print_table(results, std::cout);
  std::cout << "\nresults: " << out_dir << "/kafka.json\n";
  if (!chart.empty()) {
    std::cout << "chart:   " << chart << "\n";
  }
  std::cout << "total:   " << fixed(num(results, "total_seconds"), 0) << " s\n";
  bool all_ok = true;
  for (const auto& c : configs) {
    if (tp.contains(c.key) && tp[c.key].value("check", "") != "ok") {
      all_ok = false;
    }
    if (results.contains("latency") && results["latency"].contains(c.key) &&
        !ok(results["latency"][c.key])) {
      all_ok = false;
    }
  }
  if (!all_ok) {
    std::cout << "\nbench: SOME RUNS FAILED THEIR CHECK (see the check column)\n";
  }
  return all_ok ? 0 : 1;
}

} // namespace mailroom::bench
