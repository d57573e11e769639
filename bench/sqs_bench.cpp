#include "sqs_bench.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include <mailroom/engine.hpp>

#include "app/builtin_handlers.hpp"
#include "child_report.hpp"
#include "clients/aws/sqs_api.hpp"
#include "core/latency_histogram.hpp"
#include "core/process_stats.hpp"
#include "cpu_time.hpp"
#include "figures.hpp"
#include "machine_info.hpp"
#include "options.hpp"
#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"
#include "tests/support/elasticmq_server.hpp"
#include "transports/sqs/sqs_transport.hpp"

namespace mailroom::bench {
namespace {

using nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr double target_ratio = 0.9;
constexpr std::size_t body_bytes = 100;

// ElasticMQ checks no signature; the client signs with these all the same.
aws_credentials bench_credentials() {
  aws_credentials c;
  c.access_key_id = "mailroom-bench";
  c.secret_access_key = secret_text{"mailroom-bench"};
  c.origin = "given";
  return c;
}

std::unique_ptr<sqs_api> client(const std::string& endpoint) {
  sqs_settings s;
  s.endpoint = endpoint;
  s.region = "elasticmq";
  return std::make_unique<sqs_api>(s, bench_credentials());
}

std::string create_queue(const std::string& endpoint, const std::string& name) {
  auto api = client(endpoint);
  json request = {{"QueueName", name}, {"Attributes", {{"VisibilityTimeout", "30"}}}};
  auto r = api->call("CreateQueue", request.dump());
  if (!r) {
    throw std::runtime_error("CreateQueue " + name + ": " + r.status.what);
  }
  return json::parse(r.value).at("QueueUrl").get<std::string>();
}

// Sends `n` messages of `body_bytes` in SendMessageBatch calls of 10, from
// four threads (ElasticMQ takes a batch in about a millisecond).
void prefill(const std::string& endpoint, const std::string& url, std::uint64_t n) {
  std::atomic<std::uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::string error;
  std::mutex error_mutex;
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&] {
      auto api = client(endpoint);
      for (;;) {
        auto first = next.fetch_add(10);
        if (first >= n || failed) {
          return;
        }
        json entries = json::array();
        for (auto i = first; i < std::min<std::uint64_t>(first + 10, n); ++i) {
          std::string body = "m" + std::to_string(i) + ":";
          body.resize(body_bytes, 'x');
          entries.push_back({{"Id", std::to_string(i)}, {"MessageBody", body}});
        }
        json request = {{"QueueUrl", url}, {"Entries", entries}};
        auto r = api->call("SendMessageBatch", request.dump());
        if (!r || json::parse(r.value).value("Failed", json::array()).size() != 0) {
          std::lock_guard<std::mutex> guard{error_mutex};
          error = r ? r.value : r.status.what;
          failed = true;
          return;
        }
      }
    });
  }
  for (auto& t : senders) {
    t.join();
  }
  if (failed) {
    throw std::runtime_error("pre-filling " + url + " failed: " + error);
  }
}

// Messages the queue still holds (visible, in flight, delayed); -1 when the
// server does not answer.
std::int64_t held_by(const std::string& endpoint, const std::string& url) {
  auto api = client(endpoint);
  auto a = api->get_queue_attributes(url);
  if (!a) {
    return -1;
  }
  return a.value.approximate_number_of_messages +
         a.value.approximate_number_of_messages_not_visible +
         a.value.approximate_number_of_messages_delayed;
}

// CPU seconds (user + system, all threads) of process `pid` so far.
double process_cpu_s(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  auto close = text.rfind(')'); // the command name may hold spaces
  if (close == std::string::npos) {
    return 0;
  }
  std::istringstream fields{text.substr(close + 2)};
  std::string field;
  double user = 0, sys = 0;
  // After the name: state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) {
      user = std::stod(field);
    } else if (i == 15) {
      sys = std::stod(field);
    }
  }
  return (user + sys) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

json latency_fields(const latency_histogram& h) {
  return {{"p50_us", h.quantile(0.50)}, {"p99_us", h.quantile(0.99)}};
}

} // namespace

sqs_run_settings sqs_run_settings_from(options& o) {
  sqs_run_settings s;
  s.endpoint = o.str("endpoint", "");
  s.queue_url = o.str("queue-url", "");
  s.dlq_url = o.str("dlq-url", "");
  s.messages = o.u64("messages", s.messages);
  s.receivers = static_cast<std::uint32_t>(o.u64("receivers", s.receivers));
  s.timeout = std::chrono::seconds{o.u64("timeout-s", 300)};
  if (s.endpoint.empty() || s.queue_url.empty() || s.receivers == 0) {
    throw std::invalid_argument(
        "--endpoint, --queue-url and --receivers > 0 are required");
  }
  return s;
}

json run_sqs_raw(const sqs_run_settings& s) {
  std::atomic<std::uint64_t> deleted{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> errors{0};
  std::mutex merge_mutex;
  latency_histogram round_trips; // one receive + its delete
  auto cpu0 = cpu_time::now();
  auto t0 = steady::now();
  auto deadline = t0 + s.timeout;
  std::vector<std::thread> receivers;
  for (std::uint32_t t = 0; t < s.receivers; ++t) {
    receivers.emplace_back([&] {
      auto api = client(s.endpoint);
      latency_histogram mine;
      sqs_receive_request request;
      request.queue_url = s.queue_url;
      request.max_messages = 10;
      request.wait_time_s = 1;
      request.system_attribute_names = {"ApproximateReceiveCount"};
      while (deleted < s.messages && steady::now() < deadline) {
        auto c0 = steady::now();
        auto got = api->receive_message(request);
        if (!got) {
          ++errors;
          continue;
        }
        if (got.value.empty()) {
          continue;
        }
        received += got.value.size();
        std::vector<sqs_delete_entry> entries;
        for (std::size_t i = 0; i < got.value.size(); ++i) {
          entries.push_back({std::to_string(i), got.value[i].receipt_handle});
        }
        auto done = api->delete_message_batch(s.queue_url, entries);
        if (!done) {
          ++errors;
          continue;
        }
        for (const auto& e : done.value.entries) {
          deleted += e.ok ? 1 : 0;
        }
        mine.record(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - c0)
                .count()));
      }
      std::lock_guard<std::mutex> guard{merge_mutex};
      round_trips.merge(mine);
    });
  }
  for (auto& t : receivers) {
    t.join();
  }
  auto t1 = steady::now();
  auto cpu1 = cpu_time::now();
  double secs = std::chrono::duration<double>(t1 - t0).count();
  json r = latency_fields(round_trips);
  r["kind"] = "sqs-raw";
  r["messages"] = s.messages;
  r["receivers"] = s.receivers;
  r["seconds"] = secs;
  r["msgs_per_s"] = static_cast<double>(deleted.load()) / secs;
  r["latency_of"] = "one ReceiveMessage(10) + its DeleteMessageBatch";
  r["received"] = received.load();
  r["deleted"] = deleted.load();
  r["errors"] = errors.load();
  r["cpu"] = cpu_report(cpu0, cpu1, s.messages, secs);
  r["peak_rss_bytes"] = peak_rss_bytes();
  r["check"] = deleted == s.messages ? std::string{"ok"}
                                     : "DELETED " + std::to_string(deleted.load()) +
                                           " != " + std::to_string(s.messages);
  return r;
}

json run_sqs_engine(const sqs_run_settings& s) {
  sqs_transport_settings ts;
  ts.queue_url = s.queue_url;
  ts.endpoint_url = s.endpoint;
  ts.region = "elasticmq";
  ts.wait_time_s = 1;
  ts.max_messages = 10;
  ts.receivers = s.receivers;
  ts.dlq_queue_url = s.dlq_url;
  auto cpu0 = cpu_time::now();
  auto t0 = steady::now();
  auto transport = std::make_shared<sqs_transport>(ts, bench_credentials());
  engine_parts parts;
  parts.transport = transport;
  parts.idempotency = std::make_shared<memory_idempotency_store>();
  parts.claims = std::make_shared<memory_claim_store>();
  parts.handlers.set_fallback(make_noop_handler());
  engine_config cfg;
  cfg.dedupe.enabled = false;
  cfg.sweeper.enabled = false;
  const auto workers = cfg.engine.workers;
  const auto max_in_flight = cfg.engine.max_in_flight;
  engine e{cfg, std::move(parts)};
  e.start();
  std::string check = "ok";
  while (e.metrics().acked < s.messages) {
    if (steady::now() - t0 > s.timeout) {
      check = "TIMEOUT: " + std::to_string(e.metrics().acked) + " acked";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  auto t1 = steady::now();
  auto cpu1 = cpu_time::now();
  auto exit = e.stop();
  auto m = e.metrics();
  double secs = std::chrono::duration<double>(t1 - t0).count();
  if (check == "ok" && m.dead_lettered != 0) {
    check = "UNEXPECTED DEAD LETTERS: " + std::to_string(m.dead_lettered);
  } else if (check == "ok" && !exit.drained) {
    check = "DRAIN INCOMPLETE";
  }
  json r = {{"p50_us", m.p50_us}, {"p99_us", m.p99_us}};
  r["kind"] = "sqs-engine";
  r["messages"] = s.messages;
  r["receivers"] = s.receivers;
  r["workers"] = workers;
  r["max_in_flight"] = max_in_flight;
  r["seconds"] = secs;
  r["msgs_per_s"] = static_cast<double>(m.acked) / secs;
  r["latency_of"] = "engine receive-to-settle per message";
  r["counts"] = {{"polled", m.polled},
                 {"acked", m.acked},
                 {"retried", m.retried},
                 {"fenced", m.fenced},
                 {"ack_failures", m.ack_failures}};
  r["cpu"] = cpu_report(cpu0, cpu1, s.messages, secs);
  r["peak_rss_bytes"] = peak_rss_bytes();
  r["check"] = check;
  return r;
}

namespace {

// One side's runs: every attempt's report, and the best (fastest passing).
struct side {
  const char* key;
  const char* kind;
  const char* label;
  std::vector<json> runs;

  std::vector<double> rates() const {
    std::vector<double> out;
    for (const auto& r : runs) {
      if (r.value("check", "") == "ok") {
        out.push_back(r["msgs_per_s"].get<double>());
      }
    }
    return out;
  }
  const json* best() const {
    const json* b = nullptr;
    for (const auto& r : runs) {
      if (r.value("check", "") == "ok" &&
          (b == nullptr ||
           r["msgs_per_s"].get<double>() > (*b)["msgs_per_s"].get<double>())) {
        b = &r;
      }
    }
    return b;
  }
};

} // namespace

int run_sqs_all(options& o) {
  const auto messages = o.u64("messages", 20000);
  const auto receivers = o.u64("receivers", 4);
  const auto repeat = std::max<std::uint64_t>(1, o.u64("repeat", 3));
  const auto timeout = std::chrono::seconds{o.u64("timeout-s", 300)};
  const auto out_dir = o.str("out", std::string{MAILROOM_BENCH_DIR} + "/out");
  o.check_unknown();

  std::cerr << "bench: starting ElasticMQ\n";
  mailroom::testing::elasticmq_server server{{}};
  const auto endpoint = server.endpoint();
  std::cerr << "bench: ElasticMQ on " << endpoint << " (pid " << server.pid() << ")\n";

  side sides[] = {{"raw", "sqs-raw", "raw ReceiveMessage(10) + DeleteMessageBatch", {}},
                  {"engine", "sqs-engine", "engine, no-op, dedupe off", {}}};
  for (std::uint64_t i = 0; i < repeat; ++i) {
    for (auto& sd : sides) {
      auto name = std::string{"bench-"} + sd.key + "-" + std::to_string(i);
      auto url = create_queue(endpoint, name);
      auto dlq = create_queue(endpoint, name + "-dlq");
      auto f0 = steady::now();
      prefill(endpoint, url, messages);
      std::cerr << "bench: " << name << ": " << messages << " messages sent in "
                << std::chrono::duration<double>(steady::now() - f0).count() << " s\n";
      auto server0 = process_cpu_s(server.pid());
      auto r = run_report_child(sd.kind,
                                {"--endpoint", endpoint, "--queue-url", url, "--dlq-url",
                                 dlq, "--messages", std::to_string(messages),
                                 "--receivers", std::to_string(receivers), "--timeout-s",
                                 std::to_string(timeout.count())},
                                timeout + std::chrono::seconds{30});
      auto server_s = process_cpu_s(server.pid()) - server0;
      r["server_cpu_us_per_msg"] = server_s * 1e6 / static_cast<double>(messages);
      if (r.value("check", "") == "ok" && r.contains("seconds")) {
        r["server_cores_busy"] = server_s / r["seconds"].get<double>();
      }
      if (r.value("check", "") == "ok" && held_by(endpoint, url) != 0) {
        r["check"] = "QUEUE NOT EMPTY: holds " + std::to_string(held_by(endpoint, url));
      }
      std::fprintf(stderr, "bench: %-10s %12.0f msgs/s  %s\n", sd.key,
                   r.value("msgs_per_s", 0.0),
                   r.value("check", std::string{"?"}).c_str());
      sd.runs.push_back(std::move(r));
    }
  }

  json results;
  results["machine"] = machine_info();
  results["settings"] = {{"messages", messages},
                         {"receivers", receivers},
                         {"repeat", repeat},
                         {"body_bytes", body_bytes},
                         {"server", "ElasticMQ 1.6.11"}};
  bool all_ok = true;
  for (auto& sd : sides) {
    results[sd.key] = sd.runs;
    for (const auto& r : sd.runs) {
      all_ok = all_ok && r.value("check", "") == "ok";
    }
  }
  const json* raw = sides[0].best();
  const json* eng = sides[1].best();
  json ratio_best = nullptr, ratio_median = nullptr;
  if (raw != nullptr && eng != nullptr) {
    ratio_best = (*eng)["msgs_per_s"].get<double>() / (*raw)["msgs_per_s"].get<double>();
    ratio_median = median(sides[1].rates()) / median(sides[0].rates());
  }
  results["ratio_best"] = ratio_best;
  results["ratio_median"] = ratio_median;
  ::mkdir(out_dir.c_str(), 0755);
  std::ofstream(out_dir + "/sqs.json") << results.dump(2) << "\n";

  auto& os = std::cout;
  const auto& m = results["machine"];
  os << "\nmailroom SQS bench: " << grouped(static_cast<double>(messages))
     << " messages of " << body_bytes << " B per run, " << receivers << " receivers, "
     << repeat << " interleaved runs per side, "
     << results["settings"]["server"].get<std::string>() << " on the same cores\n"
     << "machine: " << m.value("cpu_model", "?") << ", " << m.value("nproc", 0)
     << " cores, " << m.value("build_type", "?") << ", " << m.value("allocator", "?")
     << " malloc, git " << m.value("git_commit", "?")
     << (m.value("git_dirty", false) ? " (dirty)" : "") << "\n\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-46s %10s %10s %9s %10s %8s %8s %11s\n", "consumer",
                "best/s", "median/s", "p50 µs", "p99 µs", "RSS MiB", "CPU µs",
                "server µs");
  os << line;
  for (auto& sd : sides) {
    const json* b = sd.best();
    if (b == nullptr) {
      std::snprintf(line, sizeof line, "%-46s %10s  %s\n", sd.label, "-",
                    sd.runs.empty() ? "no run"
                                    : sd.runs.back().value("check", "?").c_str());
      os << line;
      continue;
    }
    std::snprintf(line, sizeof line, "%-46s %10s %10s %9s %10s %8.1f %8.1f %11.1f\n",
                  sd.label, grouped((*b)["msgs_per_s"].get<double>()).c_str(),
                  grouped(median(sd.rates())).c_str(),
                  grouped((*b)["p50_us"].get<double>()).c_str(),
                  grouped((*b)["p99_us"].get<double>()).c_str(),
                  (*b)["peak_rss_bytes"].get<double>() / (1024.0 * 1024.0),
                  (*b)["cpu"]["us_per_msg"].get<double>(),
                  (*b)["server_cpu_us_per_msg"].get<double>());
    os << line;
  }
  if (!ratio_best.is_null()) {
    std::snprintf(line, sizeof line,
                  "engine / raw: best %.2fx, median %.2fx  target >= %.1fx  %s\n",
                  ratio_best.get<double>(), ratio_median.get<double>(), target_ratio,
                  ratio_best.get<double>() >= target_ratio ? "PASS" : "MISS");
    os << line;
  }
  os << "\np50/p99: raw per receive + delete round trip; engine per message "
        "receive-to-settle.\n"
        "CPU µs: the consumer process's CPU per message; server µs: ElasticMQ's (the "
        "JVM's)\n"
        "CPU per message over the same run, read from /proc/<pid>/stat.\n"
     << "results: " << out_dir << "/sqs.json\n";
  if (!all_ok) {
    os << "\nbench: SOME RUNS FAILED THEIR CHECK\n";
  }
  return all_ok ? 0 : 1;
}

} // namespace mailroom::bench
