#include "transports/kafka/kafka_transport.hpp"

#include <algorithm>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/unix_time.hpp"
#include "transports/kafka/kafka_conf.hpp"

namespace mailroom {

using kafka::partition_buffer;

namespace {

// One consumer-thread pass takes at most this many records before it looks
// at commits and pauses again.
constexpr int records_per_pass = 500;
// How long one dead-letter write may wait for its delivery report.
constexpr std::chrono::milliseconds dlq_write_timeout{10000};

std::string joined(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) {
    out += (out.empty() ? "" : sep) + s;
  }
  return out;
}

bool uses_cooperative(const kafka_settings& s) {
  for (const auto& [name, value] : s.properties) {
    if (name == "partition.assignment.strategy" &&
        value.find("cooperative-sticky") != std::string::npos) {
      return true;
    }
  }
  return false;
}

void check_settings(const kafka_settings& s) {
  if (s.brokers.empty()) {
    throw std::invalid_argument("kafka: brokers is required");
  }
  if (s.topics.empty()) {
    throw std::invalid_argument("kafka: at least one topic is required");
  }
}

std::string text_of(const void* data, std::size_t size) {
  return data == nullptr ? std::string{}
                         : std::string{static_cast<const char*>(data), size};
}

} // namespace

struct kafka_transport::counters {
  kafka_stats s;
};

kafka_transport::kafka_transport(kafka_settings settings,
                                 std::chrono::milliseconds startup_timeout)
    : settings_((check_settings(settings), std::move(settings))),
      cooperative_(uses_cooperative(settings_)), counters_(std::make_unique<counters>()) {
  std::string error;
  auto conf = kafka::make_conf(kafka::consumer_properties(settings_), error);
  if (!conf) {
    throw std::invalid_argument(error);
  }
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_rebalance_cb(conf.get(), &kafka_transport::on_rebalance_cb);
  rd_kafka_conf_set_offset_commit_cb(conf.get(), &kafka_transport::on_commit_cb);
  rd_kafka_conf_set_error_cb(conf.get(), &kafka_transport::on_error_cb);
  char err[512];
  rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), err, sizeof err);
  if (rk_ == nullptr) {
    throw std::invalid_argument(std::string{"kafka consumer: "} + err);
  }
  conf.release(); // rd_kafka_new owns it now
  rd_kafka_poll_set_consumer(rk_);
  try {
    dlq_ = std::make_unique<kafka::dlq_producer>(kafka::producer_properties(settings_));
    check_topics(startup_timeout);
  } catch (...) {
    rd_kafka_destroy_flags(rk_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    throw;
  }
  auto topics = kafka::make_partition_list(static_cast<int>(settings_.topics.size()));
  for (const auto& t : settings_.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (auto e = rd_kafka_subscribe(rk_, topics.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_destroy_flags(rk_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    throw std::runtime_error(std::string{"kafka: subscribe failed: "} + rd_kafka_err2str(e));
  }
  consumer_thread_ = std::thread([this] { run(); });
}

kafka_transport::~kafka_transport() {
  (void)close();
}

std::string kafka_transport::source_id() const {
  return "kafka:" + settings_.group_id + ":" + joined(settings_.topics, ",");
}

// Every topic and dead-letter topic must exist: a consumer subscribed to a
// missing one would wait for ever, and a dead-letter write to one would fail
// for ever. Asking for the metadata also proves the brokers answer.
void kafka_transport::check_topics(std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  auto e = rd_kafka_metadata(rk_, 1, nullptr, &md, static_cast<int>(timeout.count()));
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("cannot reach the Kafka brokers at " + settings_.brokers +
                             " within " + std::to_string(timeout.count()) +
                             " ms: " + rd_kafka_err2str(e));
  }
  auto exists = [md](const std::string& name) {
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (name == md->topics[i].topic) {
        return md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
      }
    }
    return false;
  };
  std::string missing;
  for (const auto& t : settings_.topics) {
    if (!exists(t)) {
      missing = "topic \"" + t + "\" does not exist on " + settings_.brokers;
    } else if (!exists(dlq_topic_for(settings_, t))) {
      missing = "dead-letter topic \"" + dlq_topic_for(settings_, t) +
                "\" does not exist on " + settings_.brokers + " (create it, or set "
                "transport.kafka.dlq_topic)";
    }
    if (!missing.empty()) {
      break;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (!missing.empty()) {
    throw std::runtime_error(missing);
  }
}

// ---- the consumer thread -------------------------------------------------------

void kafka_transport::run() {
  std::vector<rd_kafka_message_t*> pass;
  pass.reserve(records_per_pass);
  while (!stop_.load(std::memory_order_acquire)) {
    if (holding_back()) {
      commit_when_due();
      continue;
    }
    // The first call waits, the rest take what is already fetched. While a
    // partition is paused its buffer drains in milliseconds: the wait is
    // short then, so it is resumed as soon as it is down to half, instead of
    // the engine idling for the rest of a 100 ms poll.
    int wait_ms = any_paused_.load(std::memory_order_relaxed) ? 2 : 100;
    for (int timeout = wait_ms; static_cast<int>(pass.size()) < records_per_pass;
         timeout = 0) {
      auto* m = rd_kafka_consumer_poll(rk_, timeout);
      if (m == nullptr) {
        break;
      }
      pass.push_back(m);
    }
    if (!pass.empty()) {
      {
        std::lock_guard<std::mutex> guard{mutex_}; // once per pass, not per record
        for (auto* m : pass) {
          receive_locked(m);
        }
      }
      for (auto* m : pass) {
        rd_kafka_message_destroy(m);
      }
      readable_.notify_all();
    }
    pass.clear();
    commit_when_due();
    pause_and_resume();
  }
  close_consumer();
}

bool kafka_transport::holding_back() {
  // A full buffer first only stops this thread taking more from librdkafka:
  // what it has fetched stays in its queue (bounded by
  // queued.max.messages.kbytes). Pausing the partition would throw that
  // away and fetch it all again on resume, which a fast engine, with its
  // buffers full and drained many times a second, would pay over and over.
  // Only a buffer full for longer than pause_after (a slow engine) is paused,
  // so the group membership never waits on the engine.
  std::unique_lock<std::mutex> guard{mutex_};
  auto limit = std::max<std::uint32_t>(1, settings_.buffer_per_partition);
  bool full = false;
  for (const auto& [key, buf] : partitions_) {
    full = full || (!buf.paused && buf.buffered() >= limit);
  }
  auto now = clock::now();
  if (!full) {
    full_since_ = clock::time_point{};
    return false;
  }
  if (full_since_ == clock::time_point{}) {
    full_since_ = now;
  }
  if (now - full_since_ >= pause_after) {
    return false; // pause_and_resume pauses what is still full
  }
  drained_.wait_for(guard, std::chrono::milliseconds{2});
  return true;
}

void kafka_transport::receive_locked(rd_kafka_message_t* m) {
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    return;
  }
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("kafka: consumer error: {}", rd_kafka_message_errstr(m));
    char why[512];
    if (rd_kafka_fatal_error(rk_, why, sizeof why) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fatal_ = std::string{"kafka: fatal consumer error: "} + why;
    }
    return;
  }
  auto it = partitions_.find({rd_kafka_topic_name(m->rkt), m->partition});
  if (it == partitions_.end()) {
    return; // fetched for a partition given up meanwhile
  }
  it->second.push(envelope_of(m, it->second.generation()));
  ++counters_->s.fetched;
}

envelope kafka_transport::envelope_of(const rd_kafka_message_t* m,
                                      std::uint64_t generation) const {
  envelope e;
  e.topic = rd_kafka_topic_name(m->rkt);
  e.id = e.topic + "/" + std::to_string(m->partition) + "/" + std::to_string(m->offset);
  e.payload = text_of(m->payload, m->len);
  e.ordering_key = text_of(m->key, m->key_len);
  e.handle.partition = m->partition;
  e.handle.offset = m->offset;
  e.handle.assignment = generation;
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    for (std::size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      e.headers.emplace_back(name, text_of(value, size));
      if (e.key.empty() && !settings_.key_header.empty() && settings_.key_header == name) {
        e.key = text_of(value, size);
      }
    }
  }
  if (e.key.empty()) {
    e.key = e.id;
  }
  return e;
}

void kafka_transport::pause_and_resume() {
  auto pause = kafka::make_partition_list();
  auto resume = kafka::make_partition_list();
  bool paused = false;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    auto limit = std::max<std::uint32_t>(1, settings_.buffer_per_partition);
    bool held_long = full_since_ != clock::time_point{} && clock::now() - full_since_ >= pause_after;
    for (auto& [key, buf] : partitions_) {
      if (held_long && !buf.paused && buf.buffered() >= limit) {
        buf.paused = true;
        ++counters_->s.pauses;
        rd_kafka_topic_partition_list_add(pause.get(), key.first.c_str(), key.second);
      } else if (buf.paused && buf.buffered() <= limit / 2) {
        buf.paused = false;
        rd_kafka_topic_partition_list_add(resume.get(), key.first.c_str(), key.second);
      }
      paused = paused || buf.paused;
    }
  }
  any_paused_.store(paused, std::memory_order_relaxed);
  if (pause->cnt > 0) {
    rd_kafka_pause_partitions(rk_, pause.get());
  }
  if (resume->cnt > 0) {
    rd_kafka_resume_partitions(rk_, resume.get());
  }
}

// ---- commits ---------------------------------------------------------------------

void kafka_transport::commit_when_due() {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    bool due = settled_since_commit_ >= settings_.commit_max_messages ||
               clock::now() - last_commit_ >= settings_.commit_interval;
    if (!due || commits_held_) {
      return;
    }
  }
  commit(false);
}

void kafka_transport::commit(bool sync, const std::vector<partition_key>* only) {
  auto offsets = kafka::make_partition_list();
  {
    std::lock_guard<std::mutex> guard{mutex_};
    last_commit_ = clock::now();
    settled_since_commit_ = 0;
    for (auto& [key, buf] : partitions_) {
      if (only != nullptr && std::find(only->begin(), only->end(), key) == only->end()) {
        continue;
      }
      auto point = buf.commit_point();
      if (point < 0 || point <= buf.committed) {
        continue;
      }
      // Marked committed now so the next pass does not send it again; a
      // failure marks it uncommitted again (on_commit_cb, or below).
      buf.committed = point;
      rd_kafka_topic_partition_list_add(offsets.get(), key.first.c_str(), key.second)->offset =
          point;
    }
  }
  if (offsets->cnt == 0) {
    return;
  }
  auto e = rd_kafka_commit(rk_, offsets.get(), sync ? 0 : 1);
  if (sync || e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    on_commit_cb(rk_, e, offsets.get(), this);
  }
}

void kafka_transport::on_commit_cb(rd_kafka_t*, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  auto* self = static_cast<kafka_transport*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return; // nothing to commit
  }
  std::lock_guard<std::mutex> guard{self->mutex_};
  bool failed = false;
  for (int i = 0; i < offsets->cnt; ++i) {
    const auto& p = offsets->elems[i];
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && p.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      continue;
    }
    failed = true;
    auto it = self->partitions_.find({p.topic, p.partition});
    if (it != self->partitions_.end() && it->second.committed == p.offset) {
      it->second.committed = -1; // sent again by the next pass
    }
  }
  if (failed) {
    ++self->counters_->s.commit_errors;
    spdlog::warn("kafka: commit failed ({}); retried at the next commit",
                 rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err
                                                                    : offsets->elems[0].err));
  } else {
    ++self->counters_->s.commits;
  }
}

// ---- rebalances ------------------------------------------------------------------

void kafka_transport::on_rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                      rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* self = static_cast<kafka_transport*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->assign(parts);
  } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    self->revoke(parts);
  } else {
    spdlog::error("kafka: rebalance failed: {}", rd_kafka_err2str(err));
    rd_kafka_assign(rk, nullptr);
  }
}

void kafka_transport::assign(rd_kafka_topic_partition_list_t* parts) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (int i = 0; i < parts->cnt; ++i) {
      partition_key key{parts->elems[i].topic, parts->elems[i].partition};
      partitions_.erase(key);
      partitions_.emplace(key, partition_buffer{++generation_, settings_.ordering});
    }
    commits_held_ = false;
    ever_assigned_ = true;
    ++counters_->s.rebalances;
  }
  assigned_cv_.notify_all();
  spdlog::info("kafka: assigned {} partitions ({})", parts->cnt,
               cooperative_ ? "cooperative" : "eager");
  if (cooperative_) {
    kafka::error_ptr e{rd_kafka_incremental_assign(rk_, parts)};
    if (e) {
      spdlog::error("kafka: incremental assign failed: {}", rd_kafka_error_string(e.get()));
    }
  } else {
    rd_kafka_assign(rk_, parts);
  }
}

void kafka_transport::revoke(rd_kafka_topic_partition_list_t* parts) {
  std::vector<topic_partition> revoked;
  std::vector<partition_key> keys;
  revocation_listener* listener = nullptr;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (int i = 0; i < parts->cnt; ++i) {
      partition_key key{parts->elems[i].topic, parts->elems[i].partition};
      std::uint64_t ended = 0;
      if (auto it = partitions_.find(key); it != partitions_.end()) {
        counters_->s.dropped += it->second.drop_buffered();
        ended = it->second.generation();
      }
      keys.push_back(key);
      // Numbered: the engine's poll under way may go on to return records
      // of the next assignment, and must not drop those (ledger).
      revoked.push_back({key.first, key.second, ended});
    }
    listener = listener_;
  }
  if (listener != nullptr) {
    listener->revoke(revoked, settings_.revoke_timeout);
  }
  // A lost assignment (the session expired) cannot be committed any more.
  if (!rd_kafka_assignment_lost(rk_)) {
    commit(true, &keys);
  }
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (const auto& key : keys) {
      partitions_.erase(key);
    }
    commits_held_ = cooperative_;
    ++counters_->s.rebalances;
  }
  spdlog::info("kafka: revoked {} partitions", parts->cnt);
  if (cooperative_) {
    kafka::error_ptr e{rd_kafka_incremental_unassign(rk_, parts)};
    if (e) {
      spdlog::error("kafka: incremental unassign failed: {}", rd_kafka_error_string(e.get()));
    }
  } else {
    rd_kafka_assign(rk_, nullptr);
  }
}

void kafka_transport::on_error_cb(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<kafka_transport*>(opaque);
  // Broker connections come and go; librdkafka retries them itself. One
  // line per 5 s is enough to see an outage.
  static std::atomic<std::int64_t> last_ms{0};
  auto now = unix_ms_now();
  if (now - last_ms.load() >= 5000 || err == RD_KAFKA_RESP_ERR__FATAL) {
    last_ms = now;
    spdlog::warn("kafka: {} ({})", reason, rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)));
  }
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    std::lock_guard<std::mutex> guard{self->mutex_};
    self->fatal_ = std::string{"kafka: fatal error: "} + reason;
    self->readable_.notify_all();
  }
}

void kafka_transport::close_consumer() {
  commit(true);
  // A cooperative consumer closed before its first assignment crashes
  // librdkafka 2.0: wait for it (bounded) first.
  auto deadline = clock::now() + settings_.close_timeout;
  while (cooperative_ && clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (ever_assigned_) {
        break;
      }
    }
    if (auto* m = rd_kafka_consumer_poll(rk_, 100)) {
      rd_kafka_message_destroy(m);
    }
  }
  kafka::queue_ptr queue{rd_kafka_queue_new(rk_)};
  kafka::error_ptr e{rd_kafka_consumer_close_queue(rk_, queue.get())};
  if (e) {
    spdlog::warn("kafka: close: {}", rd_kafka_error_string(e.get()));
  }
  // Serving the queue runs the final revocation (and its commit).
  while (!e && !rd_kafka_consumer_closed(rk_) && clock::now() < deadline) {
    if (auto* m = rd_kafka_consume_queue(queue.get(), 100)) {
      rd_kafka_message_destroy(m);
    }
  }
  if (!rd_kafka_consumer_closed(rk_)) {
    spdlog::warn("kafka: the consumer did not leave the group within {} ms",
                 settings_.close_timeout.count());
  }
  queue.reset();
  rd_kafka_t* rk = nullptr;
  {
    std::lock_guard<std::mutex> guard{mutex_}; // a metrics scrape may be reading it
    rk = rk_;
    rk_ = nullptr;
  }
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

// ---- the engine's calls ------------------------------------------------------------

io_result kafka_transport::poll(std::size_t max, std::chrono::milliseconds wait,
                                envelope_batch& out) {
  std::unique_lock<std::mutex> guard{mutex_};
  auto now = clock::now();
  const auto deadline = now + wait;
  auto first = out.size();
  for (;;) {
    if (!fatal_.empty()) {
      return io_result::fatal(fatal_);
    }
    if (closing_) {
      return io_result::success();
    }
    auto n = partitions_.size();
    auto it = partitions_.begin();
    std::advance(it, n == 0 ? 0 : next_partition_ % n);
    for (std::size_t k = 0; k < n && out.size() - first < max; ++k) {
      it->second.take(max - (out.size() - first), out, now);
      if (++it == partitions_.end()) {
        it = partitions_.begin();
      }
    }
    ++next_partition_;
    if (out.size() > first && full_since_ != clock::time_point{}) {
      drained_.notify_one(); // the consumer thread waits for room
    }
    if (out.size() > first || now >= deadline) {
      return io_result::success();
    }
    auto wake = deadline;
    for (const auto& [key, buf] : partitions_) {
      wake = std::min(wake, buf.next_due());
    }
    readable_.wait_until(guard, wake);
    now = clock::now();
  }
}

partition_buffer* kafka_transport::owned_locked(const envelope& msg) {
  auto it = partitions_.find({msg.topic, msg.handle.partition});
  if (it == partitions_.end() || it->second.generation() != msg.handle.assignment) {
    return nullptr;
  }
  return &it->second;
}

void kafka_transport::settled_locked(std::size_t n) {
  settled_since_commit_ += n;
}

io_result kafka_transport::ack(const std::vector<const envelope*>& batch) {
  std::vector<std::size_t> stale;
  return ack_checked(batch, stale);
}

io_result kafka_transport::ack_checked(const std::vector<const envelope*>& batch,
                                       std::vector<std::size_t>& stale) {
  std::lock_guard<std::mutex> guard{mutex_};
  std::size_t settled = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto* buf = owned_locked(*batch[i]);
    if (buf == nullptr || !buf->settle(batch[i]->handle.offset)) {
      stale.push_back(i);
      continue;
    }
    ++settled;
  }
  counters_->s.acked += settled;
  counters_->s.stale_settles += batch.size() - settled;
  settled_locked(settled);
  return io_result::success();
}

io_result kafka_transport::nack(const envelope& msg, std::chrono::milliseconds delay) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    auto* buf = owned_locked(msg);
    if (buf == nullptr || !buf->unsettled(msg.handle.offset)) {
      ++counters_->s.stale_settles;
      return io_result::stale_delivery();
    }
    // Back at its offset, errors included (the engine counts the next
    // delivery in its attempt log, or, while that is down, goes by these);
    // until due it holds back what its ordering mode orders it with.
    buf->requeue(msg, clock::now() + std::max(delay, std::chrono::milliseconds{0}));
    ++counters_->s.retried;
  }
  readable_.notify_all();
  return io_result::success();
}

io_result kafka_transport::dead_letter(const envelope& msg,
                                       const dead_letter_record& record) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    auto* buf = owned_locked(msg);
    if (buf == nullptr || !buf->unsettled(msg.handle.offset)) {
      ++counters_->s.stale_settles;
      return io_result::stale_delivery();
    }
  }
  kafka::dlq_record r;
  r.topic = dlq_topic_for(settings_, msg.topic);
  r.has_key = !msg.ordering_key.empty();
  r.key = msg.ordering_key;
  r.value = record.payload;
  r.headers = msg.headers;
  nlohmann::json errors = record.errors;
  auto add = [&r](const char* name, std::string value) {
    r.headers.emplace_back(name, std::move(value));
  };
  add("mailroom.reason", record.reason);
  add("mailroom.attempts", std::to_string(record.attempts));
  add("mailroom.errors", errors.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  add("mailroom.source.topic", msg.topic);
  add("mailroom.source.partition", std::to_string(msg.handle.partition));
  add("mailroom.source.offset", std::to_string(msg.handle.offset));
  add("mailroom.group", settings_.group_id);
  add("mailroom.key", msg.key);
  add("mailroom.first_failure_ms", std::to_string(record.first_failure_ms));
  add("mailroom.dead_lettered_at_ms", std::to_string(record.dead_lettered_at_ms));
  if (auto w = dlq_->write(r, dlq_write_timeout); !w) {
    return w;
  }
  std::lock_guard<std::mutex> guard{mutex_};
  ++counters_->s.dead_lettered;
  // Settled only now that the record is safe; a partition revoked meanwhile
  // commits without us (its next owner may write the record again).
  if (auto* buf = owned_locked(msg); buf != nullptr && buf->settle(msg.handle.offset)) {
    settled_locked(1);
  }
  return io_result::success();
}

void kafka_transport::set_revocation_listener(revocation_listener* listener) {
  std::lock_guard<std::mutex> guard{mutex_};
  listener_ = listener;
}

std::optional<std::uint64_t> kafka_transport::dead_letter_depth() {
  std::vector<std::string> topics;
  for (const auto& t : settings_.topics) {
    auto d = dlq_topic_for(settings_, t);
    if (std::find(topics.begin(), topics.end(), d) == topics.end()) {
      topics.push_back(d);
    }
  }
  return dlq_->depth(topics, std::chrono::milliseconds{5000});
}

std::string kafka_transport::unreachable(std::chrono::milliseconds timeout) {
  auto why = dlq_->unreachable(timeout);
  return why.empty() ? why : "kafka brokers " + settings_.brokers + " do not answer: " + why;
}

std::vector<std::pair<std::string, std::uint64_t>> kafka_transport::stats_report() const {
  auto s = stats();
  return {{"offset commits", s.commits},
          {"rebalances served", s.rebalances},
          {"records dropped at revocations", s.dropped}};
}

std::vector<transport_gauge> kafka_transport::gauges() const {
  std::vector<transport_gauge> out;
  std::lock_guard<std::mutex> guard{mutex_};
  if (rk_ == nullptr) {
    return out;
  }
  for (const auto& [key, buf] : partitions_) {
    std::vector<std::pair<std::string, std::string>> labels{
        {"topic", key.first}, {"partition", std::to_string(key.second)}};
    auto point = buf.commit_point();
    if (buf.committed >= 0) {
      out.push_back({"kafka_committed_offset", "Offset committed last, per assigned partition",
                     labels, static_cast<double>(buf.committed)});
    }
    // The high watermark librdkafka last saw in a fetch reply: no broker call.
    std::int64_t low = 0, high = 0;
    if (point >= 0 && rd_kafka_get_watermark_offsets(rk_, key.first.c_str(), key.second, &low,
                                                     &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0) {
      out.push_back({"kafka_consumer_lag",
                     "Records of an assigned partition not yet settled here: the high "
                     "watermark minus the offset a commit may name",
                     labels, static_cast<double>(std::max<std::int64_t>(0, high - point))});
    }
  }
  return out;
}

kafka_stats kafka_transport::stats() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return counters_->s;
}

bool kafka_transport::wait_for_assignment(std::chrono::milliseconds limit) const {
  std::unique_lock<std::mutex> guard{mutex_};
  return assigned_cv_.wait_for(guard, limit, [this] { return !partitions_.empty(); });
}

io_result kafka_transport::close() {
  std::lock_guard<std::mutex> once{close_mutex_};
  if (closed_) {
    return io_result::success();
  }
  closed_ = true;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    closing_ = true;
  }
  readable_.notify_all();
  stop_.store(true, std::memory_order_release);
  if (consumer_thread_.joinable()) {
    consumer_thread_.join();
  }
  return io_result::success();
}

} // namespace mailroom
