#include "kafka_topics.hpp"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>

#include <librdkafka/rdkafka.h>

#include "transports/kafka/kafka_handles.hpp"

namespace mailroom::bench {
namespace {

struct handle_deleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
using handle_ptr = std::unique_ptr<rd_kafka_t, handle_deleter>;

struct event_deleter {
  void operator()(rd_kafka_event_t* e) const noexcept { rd_kafka_event_destroy(e); }
};
struct new_topic_deleter {
  void operator()(rd_kafka_NewTopic_t* t) const noexcept { rd_kafka_NewTopic_destroy(t); }
};
struct metadata_deleter {
  void operator()(const rd_kafka_metadata_t* m) const noexcept { rd_kafka_metadata_destroy(m); }
};

// A producer handle (admin calls and watermarks), or a consumer of `group`
// (committed offsets).
handle_ptr make_handle(const std::string& brokers, const std::string& group = {}) {
  char err[512];
  kafka::conf_ptr conf{rd_kafka_conf_new()};
  rd_kafka_conf_set(conf.get(), "bootstrap.servers", brokers.c_str(), err, sizeof err);
  if (!group.empty()) {
    rd_kafka_conf_set(conf.get(), "group.id", group.c_str(), err, sizeof err);
  }
  rd_kafka_t* rk = rd_kafka_new(group.empty() ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER,
                                conf.get(), err, sizeof err);
  if (rk == nullptr) {
    throw std::runtime_error(std::string{"kafka admin handle: "} + err);
  }
  conf.release(); // rd_kafka_new owns it now
  return handle_ptr{rk};
}

bool known_with_partitions(rd_kafka_t* rk, const std::string& topic, int partitions) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  auto e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
  std::unique_ptr<const rd_kafka_metadata_t, metadata_deleter> owned{md};
  rd_kafka_topic_destroy(rkt);
  return e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
         md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
         md->topics[0].partition_cnt == partitions;
}

} // namespace

void create_topics(const std::string& brokers,
                   const std::vector<std::pair<std::string, int>>& topics) {
  auto rk = make_handle(brokers);
  char err[512];
  std::vector<std::unique_ptr<rd_kafka_NewTopic_t, new_topic_deleter>> owned;
  std::vector<rd_kafka_NewTopic_t*> raw;
  for (const auto& [name, partitions] : topics) {
    auto* t = rd_kafka_NewTopic_new(name.c_str(), partitions, 1, err, sizeof err);
    if (t == nullptr) {
      throw std::runtime_error("topic " + name + ": " + err);
    }
    owned.emplace_back(t);
    raw.push_back(t);
  }
  kafka::queue_ptr q{rd_kafka_queue_new(rk.get())};
  rd_kafka_CreateTopics(rk.get(), raw.data(), raw.size(), nullptr, q.get());
  std::unique_ptr<rd_kafka_event_t, event_deleter> ev{rd_kafka_queue_poll(q.get(), 60000)};
  if (!ev) {
    throw std::runtime_error("CreateTopics timed out after 60 s");
  }
  if (auto e = rd_kafka_event_error(ev.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(std::string{"CreateTopics: "} + rd_kafka_err2str(e));
  }
  std::size_t n = 0;
  const auto** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
  for (std::size_t i = 0; i < n; ++i) {
    if (auto e = rd_kafka_topic_result_error(results[i]); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(std::string{"create topic "} +
                               rd_kafka_topic_result_name(results[i]) + ": " +
                               rd_kafka_err2str(e));
    }
  }
  // Metadata reaches every client a moment after the create.
  for (const auto& [name, partitions] : topics) {
    int tries = 0;
    while (!known_with_partitions(rk.get(), name, partitions)) {
      if (++tries == 200) {
        throw std::runtime_error("topic " + name + " never showed in the metadata");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
  }
}

std::vector<std::int64_t> end_offsets(const std::string& brokers, const std::string& topic,
                                      int partitions) {
  auto rk = make_handle(brokers);
  std::vector<std::int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    std::int64_t low = 0;
    std::int64_t high = 0;
    auto e = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("watermarks of " + topic + "/" + std::to_string(p) + ": " +
                               rd_kafka_err2str(e));
    }
    out.push_back(high);
  }
  return out;
}

std::vector<std::int64_t> committed_offsets(const std::string& brokers,
                                            const std::string& group,
                                            const std::string& topic, int partitions) {
  auto rk = make_handle(brokers, group);
  auto list = kafka::make_partition_list(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  }
  if (auto e = rd_kafka_committed(rk.get(), list.get(), 10000); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("committed offsets of group " + group + ": " +
                             rd_kafka_err2str(e));
  }
  std::vector<std::int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    out.push_back(list->elems[p].offset);
  }
  rd_kafka_consumer_close(rk.get());
  return out;
}

std::uint64_t offset_sum(const std::vector<std::int64_t>& offsets) {
  std::uint64_t sum = 0;
  for (auto o : offsets) {
    sum += o > 0 ? static_cast<std::uint64_t>(o) : 0;
  }
  return sum;
}

} // namespace mailroom::bench
