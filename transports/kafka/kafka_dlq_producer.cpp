#include "transports/kafka/kafka_dlq_producer.hpp"

#include <algorithm>
#include <stdexcept>

namespace mailroom::kafka {

struct dlq_producer::report {
  bool done = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
};

void dlq_producer::on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  // The report belongs to the write that waits for it (its _private opaque).
  if (auto* r = static_cast<report*>(m->_private)) {
    r->err = m->err;
    r->done = true;
  }
}

dlq_producer::dlq_producer(const property_list& props) {
  std::string error;
  auto conf = make_conf(props, error);
  if (!conf) {
    throw std::runtime_error(error);
  }
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &dlq_producer::on_delivery);
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err);
  if (rk_ == nullptr) {
    throw std::runtime_error(std::string{"kafka dead-letter producer: "} + err);
  }
  conf.release(); // rd_kafka_new owns it now
}

dlq_producer::~dlq_producer() {
  if (rk_ != nullptr) {
    rd_kafka_flush(rk_, 5000);
    rd_kafka_destroy(rk_);
  }
}

io_result dlq_producer::write(const dlq_record& r, std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> guard{mutex_};
  report rep;
  rd_kafka_headers_t* headers = rd_kafka_headers_new(r.headers.size());
  for (const auto& [name, value] : r.headers) {
    rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()),
                        value.data(), static_cast<ssize_t>(value.size()));
  }
  auto err = rd_kafka_producev(
      rk_, RD_KAFKA_V_TOPIC(r.topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(r.has_key ? r.key.data() : nullptr, r.has_key ? r.key.size() : 0),
      RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
      RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(&rep), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers); // not handed over on failure
    return io_result::transient("kafka dead-letter produce to " + r.topic + ": " +
                                rd_kafka_err2str(err));
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!rep.done && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_poll(rk_, 50);
  }
  if (!rep.done) {
    // The report will still come and must not find this frame gone: purging
    // the queue fails a record not yet sent at once, and message.timeout.ms
    // bounds one in flight.
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE);
    while (!rep.done) {
      rd_kafka_poll(rk_, 50);
    }
    return io_result::transient("kafka dead-letter produce to " + r.topic +
                                ": no delivery report within " +
                                std::to_string(timeout.count()) + " ms");
  }
  if (rep.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return io_result::transient("kafka dead-letter produce to " + r.topic + ": " +
                                rd_kafka_err2str(rep.err));
  }
  return io_result::success();
}

std::string dlq_producer::unreachable(std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  // Brokers only (no topic asked for): the cheapest request that needs one.
  auto err = rd_kafka_metadata(rk_, 0, nullptr, &md, static_cast<int>(timeout.count()));
  if (md != nullptr) {
    rd_kafka_metadata_destroy(md);
  }
  return err == RD_KAFKA_RESP_ERR_NO_ERROR ? std::string{} : std::string{rd_kafka_err2str(err)};
}

std::optional<std::uint64_t> dlq_producer::depth(const std::vector<std::string>& topics,
                                                 std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> guard{mutex_};
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk_, 1, nullptr, &md, static_cast<int>(timeout.count())) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  std::uint64_t total = 0;
  bool ok = true;
  for (int t = 0; t < md->topic_cnt && ok; ++t) {
    const auto& topic = md->topics[t];
    if (std::find(topics.begin(), topics.end(), topic.topic) == topics.end()) {
      continue;
    }
    for (int p = 0; p < topic.partition_cnt && ok; ++p) {
      std::int64_t low = 0, high = 0;
      ok = rd_kafka_query_watermark_offsets(rk_, topic.topic, topic.partitions[p].id, &low,
                                            &high, static_cast<int>(timeout.count())) ==
           RD_KAFKA_RESP_ERR_NO_ERROR;
      total += static_cast<std::uint64_t>(std::max<std::int64_t>(0, high - low));
    }
  }
  rd_kafka_metadata_destroy(md);
  if (!ok) {
    return std::nullopt;
  }
  return total;
}

} // namespace mailroom::kafka
