#include "kafka_raw_consumer.hpp"

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string_view>

#include <librdkafka/rdkafka.h>

#include "core/process_stats.hpp"
#include "cpu_time.hpp"
#include "kafka_producer.hpp"
#include "kafka_topics.hpp"
#include "transports/kafka/kafka_handles.hpp"

namespace mailroom::bench {
namespace {

using nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr std::uint64_t commit_every_records = 10000;
constexpr auto commit_every = std::chrono::seconds{1};

struct commit_counts {
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
};

void on_commit(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t*,
               void* opaque) {
  auto* c = static_cast<commit_counts*>(opaque);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++c->ok;
  } else if (err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    ++c->failed;
  }
}

rd_kafka_t* make_consumer(const kafka_run_settings& s, commit_counts* commits) {
  char err[512];
  kafka::conf_ptr conf{rd_kafka_conf_new()};
  const std::pair<const char*, std::string> props[] = {
      {"bootstrap.servers", s.brokers},
      {"group.id", s.group},
      {"client.id", "mailroom-bench-raw"},
      {"auto.offset.reset", "earliest"},
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", "false"}};
  for (const auto& [name, value] : props) {
    if (rd_kafka_conf_set(conf.get(), name, value.c_str(), err, sizeof err) !=
        RD_KAFKA_CONF_OK) {
      throw std::runtime_error(std::string{"consumer property "} + name + ": " + err);
    }
  }
  rd_kafka_conf_set_opaque(conf.get(), commits);
  rd_kafka_conf_set_offset_commit_cb(conf.get(), &on_commit);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err);
  if (rk == nullptr) {
    throw std::runtime_error(std::string{"kafka consumer: "} + err);
  }
  conf.release(); // rd_kafka_new owns it now
  rd_kafka_poll_set_consumer(rk);
  auto topics = kafka::make_partition_list(1);
  rd_kafka_topic_partition_list_add(topics.get(), s.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto e = rd_kafka_subscribe(rk, topics.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_destroy(rk);
    throw std::runtime_error(std::string{"subscribe: "} + rd_kafka_err2str(e));
  }
  return rk;
}

bool assigned(rd_kafka_t* rk) {
  rd_kafka_topic_partition_list_t* list = nullptr;
  if (rd_kafka_assignment(rk, &list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return false;
  }
  kafka::partition_list_ptr owned{list};
  return list->cnt > 0;
}

} // namespace

json run_kafka_raw(const kafka_run_settings& s) {
  const std::uint64_t n = s.expected();
  const std::uint64_t warm = s.rate > 0 ? s.warmup_records() : 0;
  const std::string what = std::string{s.rate > 0 ? "raw latency " : "raw consumer "} + s.group;
  commit_counts commits;
  latency_histogram latency;
  std::uint64_t consumed = 0;
  std::uint64_t errors = 0;
  std::uint64_t unstamped = 0;
  kafka_run_times times;
  auto cpu0 = cpu_time::now();
  times.begin = steady::now();
  auto last_note = times.begin;
  rd_kafka_t* rk = make_consumer(s, &commits);
  auto timed_out = [&] { return steady::now() - times.begin > s.timeout; };
  std::unique_ptr<paced_producer> producer;
  if (s.rate > 0) {
    // Records written before the partitions are ours would wait for the join.
    while (!assigned(rk)) {
      if (auto* m = rd_kafka_consumer_poll(rk, 100)) {
        rd_kafka_message_destroy(m);
      }
      if (timed_out()) {
        timeout_exit({{"kind", "kafka-raw"}, {"group", s.group}, {"phase", "join"}}, s, 0);
      }
    }
    producer = std::make_unique<paced_producer>(s.brokers, s.topic, s.partitions, s.rate, n,
                                                s.record_bytes);
    producer->start();
  }
  std::uint64_t since_commit = 0;
  auto last_commit = steady::now();
  while (consumed < n) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    auto now = steady::now();
    if (m == nullptr) {
      if (timed_out()) {
        timeout_exit({{"kind", "kafka-raw"}, {"group", s.group}}, s, consumed);
      }
      progress_line(what, consumed, n, times.begin, last_note);
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++errors;
      rd_kafka_message_destroy(m);
      continue;
    }
    if (consumed == 0) {
      times.first = now;
    }
    if (s.rate > 0) {
      auto stamp = read_stamp({static_cast<const char*>(m->payload), m->len});
      if (!stamp.valid) {
        ++unstamped;
      } else if (stamp.seq >= warm) {
        latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(
            0, (steady_ns() - stamp.sent_ns) / 1000)));
      }
    }
    rd_kafka_message_destroy(m);
    ++consumed;
    if (++since_commit >= commit_every_records || now - last_commit >= commit_every) {
      rd_kafka_commit(rk, nullptr, 1);
      since_commit = 0;
      last_commit = now;
    }
    if ((consumed & 0x3ff) == 0) {
      if (timed_out()) {
        timeout_exit({{"kind", "kafka-raw"}, {"group", s.group}}, s, consumed);
      }
      progress_line(what, consumed, n, times.begin, last_note);
    }
  }
  times.last = steady::now();
  auto cpu1 = cpu_time::now();
  auto final_commit = rd_kafka_commit(rk, nullptr, 0);
  bool produced = producer ? producer->join() : true;
  json producer_report;
  if (producer) {
    producer_report = {{"sent", producer->sent()},
                       {"failed", producer->failed()},
                       {"max_lag_us", producer->max_lag_us()}};
    producer.reset();
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);

  auto committed = committed_offsets(s.brokers, s.group, s.topic, s.partitions);
  auto ends = end_offsets(s.brokers, s.topic, s.partitions);
  std::string check = "ok";
  if (final_commit != RD_KAFKA_RESP_ERR_NO_ERROR) {
    check = std::string{"FINAL COMMIT FAILED: "} + rd_kafka_err2str(final_commit);
  } else if (committed != ends) {
    check = "COMMITTED " + std::to_string(offset_sum(committed)) + " != END " +
            std::to_string(offset_sum(ends));
  } else if (!produced) {
    check = "PRODUCE FAILED";
  } else if (unstamped > 0) {
    check = "UNSTAMPED RECORDS: " + std::to_string(unstamped);
  }
  json r = timing_json(times, n);
  r["kind"] = "kafka-raw";
  r["group"] = s.group;
  r["topic"] = s.topic;
  r["records"] = n;
  r["consumed"] = consumed;
  r["consumer_errors"] = errors;
  r["commits"] = {{"ok", commits.ok}, {"failed", commits.failed}};
  r["committed_sum"] = offset_sum(committed);
  r["end_sum"] = offset_sum(ends);
  r["cpu"] = cpu_report(cpu0, cpu1, n, std::chrono::duration<double>(times.last - times.begin).count());
  r["peak_rss_bytes"] = peak_rss_bytes();
  if (s.rate > 0) {
    r["rate"] = s.rate;
    r["measured_seconds"] = s.seconds;
    r["warmup_records"] = warm;
    r["latency"] = latency_json(latency);
    r["latency_of"] = "send stamp in the producer to rd_kafka_consumer_poll returning it";
    r["producer"] = producer_report;
  }
  r["check"] = check;
  return r;
}

} // namespace mailroom::bench
