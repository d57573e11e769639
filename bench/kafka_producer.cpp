#include "kafka_producer.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "transports/kafka/kafka_handles.hpp"

namespace mailroom::bench {
namespace {

using steady = std::chrono::steady_clock;

// Delivery-report counts, the producer's opaque.
struct reports {
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* r = static_cast<reports*>(opaque);
  (m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? r->delivered : r->failed)
      .fetch_add(1, std::memory_order_relaxed);
}

rd_kafka_t* make_producer(const std::string& brokers, const char* linger_ms,
                          const char* batch_messages, reports* opaque) {
  char err[512];
  kafka::conf_ptr conf{rd_kafka_conf_new()};
  const std::pair<const char*, const char*> props[] = {
      {"bootstrap.servers", brokers.c_str()},
      {"client.id", "mailroom-bench-producer"},
      {"acks", "1"},
      {"enable.idempotence", "false"},
      {"compression.type", "none"},
      {"linger.ms", linger_ms},
      {"batch.num.messages", batch_messages},
      {"batch.size", "4000000"},
      {"queue.buffering.max.messages", "1000000"},
      {"message.timeout.ms", "60000"}};
  for (const auto& [name, value] : props) {
    if (rd_kafka_conf_set(conf.get(), name, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
      throw std::runtime_error(std::string{"producer property "} + name + ": " + err);
    }
  }
  rd_kafka_conf_set_opaque(conf.get(), opaque);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &on_delivery);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err);
  if (rk == nullptr) {
    throw std::runtime_error(std::string{"kafka producer: "} + err);
  }
  conf.release(); // rd_kafka_new owns it now
  return rk;
}

// Produces one record to `partition`, waiting (and serving reports) while
// the local queue is full. Returns false on any other error.
bool produce(rd_kafka_t* rk, rd_kafka_topic_t* rkt, int partition, void* data,
             std::size_t size, int flags) {
  for (;;) {
    if (rd_kafka_produce(rkt, partition, flags, data, size, nullptr, 0, nullptr) == 0) {
      return true;
    }
    if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return false;
    }
    rd_kafka_poll(rk, 10);
  }
}

std::string grouped(std::uint64_t v) {
  auto s = std::to_string(v);
  for (auto i = static_cast<long>(s.size()) - 3; i > 0; i -= 3) {
    s.insert(static_cast<std::size_t>(i), ",");
  }
  return s;
}

} // namespace

fill_report fill_topic(const std::string& brokers, const std::string& topic, int partitions,
                       std::uint64_t records, std::size_t bytes) {
  reports counts;
  rd_kafka_t* rk = make_producer(brokers, "20", "10000", &counts);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  // Not copied (flags 0): every record points at this one buffer, which
  // outlives the flush.
  std::vector<char> payload(bytes, 'x');
  fill_report r;
  auto t0 = steady::now();
  auto next_note = t0 + std::chrono::seconds{1};
  auto note = [&](bool force) {
    auto now = steady::now();
    if (force || now >= next_note) {
      next_note = now + std::chrono::seconds{1};
      std::fprintf(stderr, "bench: pre-fill %s: %s / %s records written (%.1f s)\n",
                   topic.c_str(), grouped(counts.delivered.load()).c_str(),
                   grouped(records).c_str(), std::chrono::duration<double>(now - t0).count());
    }
  };
  bool ok = true;
  for (std::uint64_t i = 0; i < records && ok; ++i) {
    ok = produce(rk, rkt, static_cast<int>(i % static_cast<std::uint64_t>(partitions)),
                 payload.data(), payload.size(), 0);
    if (i % 1024 == 0) {
      rd_kafka_poll(rk, 0);
      note(false);
    }
  }
  auto flush_deadline = steady::now() + std::chrono::seconds{120};
  while (rd_kafka_outq_len(rk) > 0 && steady::now() < flush_deadline) {
    rd_kafka_poll(rk, 100);
    note(false);
  }
  r.seconds = std::chrono::duration<double>(steady::now() - t0).count();
  bool flushed = rd_kafka_outq_len(rk) == 0;
  note(true);
  rd_kafka_topic_destroy(rkt);
  rd_kafka_destroy(rk);
  r.delivered = counts.delivered.load();
  r.failed = counts.failed.load();
  if (!ok) {
    throw std::runtime_error("pre-fill of " + topic + ": produce failed");
  }
  if (!flushed) {
    throw std::runtime_error("pre-fill of " + topic + ": not flushed within 120 s");
  }
  return r;
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             steady::now().time_since_epoch())
      .count();
}

send_stamp read_stamp(std::string_view payload) {
  // The payload is not NUL-terminated: parse from a bounded copy.
  char buf[48];
  auto n = std::min(payload.size(), sizeof buf - 1);
  payload.copy(buf, n);
  buf[n] = '\0';
  char* end = nullptr;
  send_stamp s;
  s.seq = std::strtoull(buf, &end, 10);
  if (end == buf || *end != ' ') {
    return s;
  }
  char* start = end + 1;
  s.sent_ns = std::strtoll(start, &end, 10);
  s.valid = end != start && *end == ' ';
  return s;
}

struct paced_producer::state {
  reports counts;
  rd_kafka_t* rk = nullptr;
  rd_kafka_topic_t* rkt = nullptr;
};

paced_producer::paced_producer(const std::string& brokers, const std::string& topic,
                               int partitions, std::uint64_t rate, std::uint64_t total,
                               std::size_t bytes)
    : state_(std::make_unique<state>()), topic_(topic), partitions_(partitions), rate_(rate),
      total_(total), bytes_(bytes) {
  state_->rk = make_producer(brokers, "1", "10000", &state_->counts);
  state_->rkt = rd_kafka_topic_new(state_->rk, topic.c_str(), nullptr);
}

paced_producer::~paced_producer() {
  join();
  rd_kafka_topic_destroy(state_->rkt);
  rd_kafka_destroy(state_->rk);
}

void paced_producer::start() {
  thread_ = std::thread([this] { run(); });
}

void paced_producer::run() {
  std::vector<char> payload(std::max<std::size_t>(bytes_, 48), 'x');
  const auto t0 = steady::now();
  const double rate = static_cast<double>(std::max<std::uint64_t>(rate_, 1));
  auto due_of = [&](std::uint64_t i) {
    return t0 + std::chrono::nanoseconds{static_cast<std::int64_t>(1e9 * static_cast<double>(i) / rate)};
  };
  for (std::uint64_t i = 0; i < total_;) {
    auto now = steady::now();
    auto due = due_of(i);
    if (due > now) {
      // Wake at most every 0.5 ms and write what fell due meanwhile: a sleep
      // per record would cost more than the record.
      rd_kafka_poll(state_->rk, 0);
      std::this_thread::sleep_until(std::max(due, now + std::chrono::microseconds{500}));
      continue;
    }
    auto lag = std::chrono::duration_cast<std::chrono::microseconds>(now - due).count();
    if (lag > max_lag_us_.load(std::memory_order_relaxed)) {
      max_lag_us_.store(lag, std::memory_order_relaxed);
    }
    for (; i < total_ && due_of(i) <= now; ++i) {
      int n = std::snprintf(payload.data(), payload.size(), "%llu %lld ",
                            static_cast<unsigned long long>(i),
                            static_cast<long long>(steady_ns()));
      payload[static_cast<std::size_t>(n)] = 'x'; // snprintf's NUL back to padding
      auto partition = static_cast<int>(i % static_cast<std::uint64_t>(partitions_));
      if (!produce(state_->rk, state_->rkt, partition, payload.data(), bytes_,
                   RD_KAFKA_MSG_F_COPY)) {
        failed_.fetch_add(1, std::memory_order_relaxed);
      }
      sent_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

bool paced_producer::join() {
  if (joined_) {
    return failed() == 0;
  }
  joined_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
  rd_kafka_flush(state_->rk, 30000);
  failed_.fetch_add(state_->counts.failed.load(), std::memory_order_relaxed);
  return failed() == 0 && rd_kafka_outq_len(state_->rk) == 0;
}

} // namespace mailroom::bench
