#pragma once

// Test support for Kafka: kcat produces and reads topics (the independent
// client), and a librdkafka admin handle of its own creates topics and reads
// a group's committed offsets and the end offsets, as an operator would.
//
// Include after <boost/test/unit_test.hpp>.

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "tests/support/kafka_broker.hpp"
#include "tests/support/process_runner.hpp"

namespace mailroom::testing {

/// One record as kcat read it back.
struct kafka_record {
  int partition = -1;
  long long offset = -1;
  std::string key;
  bool null_value = false;
  std::string value;
  std::map<std::string, std::string> headers; ///< Last value of each name.
};

/// The broker every test of one executable shares: starting one costs 5-7 s.
inline kafka_broker& shared_broker() {
  static kafka_broker broker;
  return broker;
}

/// Returns a name unique to this process and call, for topics and groups.
inline std::string unique_name(const std::string& stem) {
  static int n = 0;
  return stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

namespace kafka_admin_detail {

struct handle_deleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using handle = std::unique_ptr<rd_kafka_t, handle_deleter>;

// A handle for admin calls and offset queries, in consumer group `group`.
inline handle make_handle(const std::string& bootstrap, const std::string& group = {}) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "message.max.bytes", "4000000", err, sizeof err);
  if (!group.empty()) {
    rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof err);
  }
  rd_kafka_t* rk = rd_kafka_new(group.empty() ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf,
                                err, sizeof err);
  BOOST_REQUIRE_MESSAGE(rk != nullptr, err);
  return handle{rk};
}

} // namespace kafka_admin_detail

/// Creates `topic` with `partitions` partitions and the topic `configs`
/// (and waits until it is known).
inline void create_topic(const kafka_broker& broker, const std::string& topic, int partitions,
                         const std::map<std::string, std::string>& configs = {}) {
  auto rk = kafka_admin_detail::make_handle(broker.bootstrap());
  char err[512];
  rd_kafka_NewTopic_t* t =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
  BOOST_REQUIRE_MESSAGE(t != nullptr, err);
  for (const auto& [name, value] : configs) {
    rd_kafka_NewTopic_set_config(t, name.c_str(), value.c_str());
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
  rd_kafka_CreateTopics(rk.get(), &t, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  BOOST_REQUIRE_MESSAGE(ev != nullptr, "CreateTopics timed out");
  const auto* res = rd_kafka_event_CreateTopics_result(ev);
  size_t n = 0;
  const auto** topics = rd_kafka_CreateTopics_result_topics(res, &n);
  BOOST_REQUIRE(n == 1u);
  auto code = rd_kafka_topic_result_error(topics[0]);
  BOOST_REQUIRE_MESSAGE(code == RD_KAFKA_RESP_ERR_NO_ERROR,
                        "create " << topic << ": " << rd_kafka_err2str(code));
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(t);
  // Metadata reaches every client a moment later.
  for (int i = 0; i < 100; ++i) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
    bool ok = rd_kafka_metadata(rk.get(), 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topics[0].partition_cnt == partitions;
    if (md != nullptr) {
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    if (ok) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  BOOST_FAIL("topic " << topic << " never showed in the metadata");
}

/// Creates `topic` and its dead-letter topic `<topic>.dlq`.
inline void create_topic_with_dlq(const kafka_broker& broker, const std::string& topic,
                                  int partitions) {
  create_topic(broker, topic, partitions);
  create_topic(broker, topic + ".dlq", 1);
}

/// Returns the offsets group `group` committed for partitions 0..n-1 of
/// `topic` (-1001 where none is committed).
inline std::vector<long long> committed_offsets(const kafka_broker& broker,
                                                const std::string& group,
                                                const std::string& topic, int partitions) {
  auto rk = kafka_admin_detail::make_handle(broker.bootstrap(), group);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
  }
  // A freshly started broker answers "not coordinator" (or "loading")
  // until its group coordinator is up: asked again, as a client would.
  auto e = rd_kafka_committed(rk.get(), list, 10000);
  for (int attempt = 0; attempt < 20 && (e == RD_KAFKA_RESP_ERR_NOT_COORDINATOR ||
                                         e == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
                                         e == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
       ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
    e = rd_kafka_committed(rk.get(), list, 10000);
  }
  BOOST_REQUIRE_MESSAGE(e == RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_err2str(e));
  std::vector<long long> out;
  for (int p = 0; p < partitions; ++p) {
    out.push_back(list->elems[p].offset);
  }
  rd_kafka_topic_partition_list_destroy(list);
  return out;
}

/// Returns the end (high watermark) offsets of partitions 0..n-1 of `topic`.
inline std::vector<long long> end_offsets(const kafka_broker& broker, const std::string& topic,
                                          int partitions) {
  auto rk = kafka_admin_detail::make_handle(broker.bootstrap());
  std::vector<long long> out;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    auto e = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high, 10000);
    BOOST_REQUIRE_MESSAGE(e == RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_err2str(e));
    out.push_back(high);
  }
  return out;
}

/// Produces `lines` ("key:value" each, or "value" with `keyed` false) to
/// `topic` with kcat, with `headers` ("name=value") on every record.
inline void produce(const kafka_broker& broker, const std::string& topic,
                    const std::vector<std::string>& lines, bool keyed = true,
                    const std::vector<std::string>& headers = {}) {
  auto path = "/tmp/mailroom-kafka-" + std::to_string(::getpid()) + "-" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  {
    std::ofstream out{path, std::ios::trunc};
    for (const auto& line : lines) {
      out << line << "\n";
    }
  }
  std::vector<std::string> argv{broker.kcat(), "-P", "-b", broker.bootstrap(), "-t", topic,
                                "-l", path, "-X", "acks=all"};
  if (keyed) {
    argv.insert(argv.end(), {"-K:"});
  }
  for (const auto& h : headers) {
    argv.insert(argv.end(), {"-H", h});
  }
  process_runner run{argv};
  int code = run.wait(std::chrono::seconds{60});
  ::unlink(path.c_str());
  BOOST_REQUIRE_MESSAGE(code == 0, "kcat -P exited " << code << ": " << run.err());
}

/// Produces one record with librdkafka: a null value (a tombstone) when
/// `value` is null, or a value larger than kcat takes.
inline void produce_record(const kafka_broker& broker, const std::string& topic,
                           const std::string& key, const std::string* value) {
  auto rk = kafka_admin_detail::make_handle(broker.bootstrap());
  auto e = rd_kafka_producev(
      rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(value ? const_cast<char*>(value->data()) : nullptr,
                       value ? value->size() : 0),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  BOOST_REQUIRE_MESSAGE(e == RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_err2str(e));
  BOOST_REQUIRE(rd_kafka_flush(rk.get(), 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

/// Reads every record of `topic` with kcat (to the end of each partition).
inline std::vector<kafka_record> read_topic(const kafka_broker& broker,
                                            const std::string& topic) {
  process_runner run{{broker.kcat(), "-C", "-b", broker.bootstrap(), "-t", topic, "-e", "-q",
                      "-J", "-o", "beginning"}};
  int code = run.wait(std::chrono::seconds{60});
  BOOST_REQUIRE_MESSAGE(code == 0, "kcat -C exited " << code << ": " << run.err());
  std::vector<kafka_record> out;
  std::istringstream in{run.out()};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    auto j = nlohmann::json::parse(line);
    kafka_record r;
    r.partition = j.value("partition", -1);
    r.offset = j.value("offset", -1LL);
    if (j.contains("key") && j["key"].is_string()) {
      r.key = j["key"].get<std::string>();
    }
    r.null_value = !j.contains("payload") || j["payload"].is_null();
    if (!r.null_value) {
      r.value = j["payload"].get<std::string>();
    }
    if (j.contains("headers") && j["headers"].is_array()) {
      const auto& h = j["headers"];
      for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
        r.headers[h[i].get<std::string>()] = h[i + 1].is_string() ? h[i + 1].get<std::string>()
                                                                  : std::string{};
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

} // namespace mailroom::testing
