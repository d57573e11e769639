#include "kafka_run.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>

#include "options.hpp"

namespace mailroom::bench {

std::uint64_t kafka_run_settings::expected() const {
  return rate > 0 ? rate * (warmup_s + seconds) : records;
}

kafka_run_settings kafka_run_settings_from(options& o) {
  kafka_run_settings s;
  s.brokers = o.str("brokers", "");
  s.topic = o.str("topic", "");
  s.group = o.str("group", "");
  s.partitions = static_cast<int>(o.u64("partitions", 4));
  s.records = o.u64("records", s.records);
  s.rate = o.u64("rate", 0);
  s.seconds = o.u64("seconds", s.seconds);
  s.warmup_s = o.u64("warmup-s", s.warmup_s);
  s.record_bytes = o.u64("record-bytes", s.record_bytes);
  s.redis_port = static_cast<int>(o.u64("redis-port", 0));
  s.timeout = std::chrono::seconds{o.u64("timeout-s", 300)};
  s.ordering = o.str("ordering", s.ordering);
  s.buffer_per_partition = o.u64("buffer", 0);
  if (s.ordering != "per_partition" && s.ordering != "per_key" && s.ordering != "unordered") {
    throw std::invalid_argument("--ordering must be per_partition, per_key or unordered");
  }
  if (s.brokers.empty() || s.topic.empty() || s.group.empty()) {
    throw std::invalid_argument("--brokers, --topic and --group are required");
  }
  if (s.partitions <= 0 || s.expected() == 0) {
    throw std::invalid_argument("--partitions and --records (or --rate) must be > 0");
  }
  if (s.rate > 0 && s.record_bytes < 48) {
    throw std::invalid_argument("--record-bytes must be >= 48 to hold the send stamp");
  }
  return s;
}

std::vector<std::string> kafka_run_args(const kafka_run_settings& s) {
  std::vector<std::string> a{"--brokers",    s.brokers,
                             "--topic",      s.topic,
                             "--group",      s.group,
                             "--partitions", std::to_string(s.partitions),
                             "--records",    std::to_string(s.records),
                             "--timeout-s",  std::to_string(s.timeout.count())};
  if (s.rate > 0) {
    a.insert(a.end(), {"--rate", std::to_string(s.rate), "--seconds", std::to_string(s.seconds),
                       "--warmup-s", std::to_string(s.warmup_s), "--record-bytes",
                       std::to_string(s.record_bytes)});
  }
  if (s.redis_port > 0) {
    a.insert(a.end(), {"--redis-port", std::to_string(s.redis_port)});
  }
  a.insert(a.end(), {"--ordering", s.ordering});
  if (s.buffer_per_partition > 0) {
    a.insert(a.end(), {"--buffer", std::to_string(s.buffer_per_partition)});
  }
  return a;
}

nlohmann::json timing_json(const kafka_run_times& t, std::uint64_t n) {
  auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  double run = secs(t.last - t.first);
  double wall = secs(t.last - t.begin);
  return {{"seconds", run},
          {"msgs_per_s", run > 0 ? static_cast<double>(n) / run : 0.0},
          {"join_s", secs(t.first - t.begin)},
          {"wall_seconds", wall},
          {"wall_msgs_per_s", wall > 0 ? static_cast<double>(n) / wall : 0.0}};
}

nlohmann::json latency_json(const latency_histogram& h) {
  return {{"p50_us", h.quantile(0.50)},
          {"p99_us", h.quantile(0.99)},
          {"max_us", h.max()},
          {"count", h.count()}};
}

void progress_line(const std::string& what, std::uint64_t done, std::uint64_t total,
                   std::chrono::steady_clock::time_point begin,
                   std::chrono::steady_clock::time_point& last) {
  auto now = std::chrono::steady_clock::now();
  if (now - last < std::chrono::seconds{1}) {
    return;
  }
  last = now;
  std::fprintf(stderr, "bench:   %-34s %9llu / %llu (%.1f s)\n", what.c_str(),
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
               std::chrono::duration<double>(now - begin).count());
}

void timeout_exit(nlohmann::json fields, const kafka_run_settings& s, std::uint64_t done) {
  fields["records"] = s.expected();
  fields["msgs_per_s"] = 0.0;
  fields["check"] = "TIMEOUT after " + std::to_string(s.timeout.count()) + " s: " +
                    std::to_string(done) + " of " + std::to_string(s.expected());
  std::cout << fields.dump() << std::endl;
  std::_Exit(1);
}

} // namespace mailroom::bench
