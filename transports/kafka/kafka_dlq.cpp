#include "transports/kafka/kafka_dlq.hpp"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "transports/kafka/kafka_conf.hpp"

namespace mailroom {

namespace {

constexpr const char* replayed_header = "mailroom.replayed";
constexpr const char* replay_of_header = "mailroom.replay_of";
constexpr const char* internal_prefix = "mailroom.";
// Longest wait for the brokers: metadata, watermarks, a transaction's end,
// or the next record of a range that the watermarks say is there.
constexpr int timeout_ms = 10000;

struct dlq_id {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};

std::string id_text(const std::string& topic, std::int32_t partition, std::int64_t offset) {
  return topic + "/" + std::to_string(partition) + "/" + std::to_string(offset);
}

// "<topic>/<partition>/<offset>" (topic names cannot hold '/').
std::optional<dlq_id> parse_id(const std::string& text) {
  auto second = text.rfind('/');
  auto first = second == std::string::npos || second == 0 ? std::string::npos
                                                          : text.rfind('/', second - 1);
  if (first == std::string::npos || first == 0) {
    return std::nullopt;
  }
  try {
    std::size_t used_p = 0, used_o = 0;
    auto p_text = text.substr(first + 1, second - first - 1);
    auto o_text = text.substr(second + 1);
    dlq_id id{text.substr(0, first), std::stoi(p_text, &used_p), std::stoll(o_text, &used_o)};
    if (used_p != p_text.size() || used_o != o_text.size() || id.offset < 0) {
      return std::nullopt;
    }
    return id;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::uint32_t to_count(const std::string& text) {
  return static_cast<std::uint32_t>(std::strtoul(text.c_str(), nullptr, 10));
}

std::vector<std::string> errors_of(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    std::vector<std::string> out;
    for (const auto& e : j) {
      out.push_back(e.is_string() ? e.get<std::string>() : e.dump());
    }
    return out;
  } catch (const std::exception&) {
    return {text};
  }
}

// Reads one dead-letter record: the engine's `mailroom.*` headers describe
// it, the others are the message's own and are written back on replay.
dlq_record record_of(const rd_kafka_message_t* m, const std::string& topic) {
  dlq_record r;
  r.id = id_text(topic, m->partition, m->offset);
  r.has_payload = m->payload != nullptr;
  if (r.has_payload) {
    r.payload.assign(static_cast<const char*>(m->payload), m->len);
  }
  if (m->key != nullptr) {
    r.broker_key.emplace(static_cast<const char*>(m->key), m->key_len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return r;
  }
  std::string source_topic, source_partition, source_offset;
  const char* name = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  for (std::size_t i = 0;
       rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    std::string n{name};
    std::string v = value != nullptr ? std::string{static_cast<const char*>(value), size} : "";
    if (n.rfind(internal_prefix, 0) != 0) {
      r.headers.emplace_back(std::move(n), std::move(v));
    } else if (n == "mailroom.reason") {
      r.reason = std::move(v);
    } else if (n == "mailroom.attempts") {
      r.attempts = to_count(v);
    } else if (n == "mailroom.errors") {
      r.errors = errors_of(v);
    } else if (n == "mailroom.key") {
      r.key = std::move(v);
    } else if (n == "mailroom.dead_lettered_at_ms") {
      r.dead_lettered_at_ms = std::strtoll(v.c_str(), nullptr, 10);
    } else if (n == "mailroom.source.topic") {
      source_topic = std::move(v);
    } else if (n == "mailroom.source.partition") {
      source_partition = std::move(v);
    } else if (n == "mailroom.source.offset") {
      source_offset = std::move(v);
    } else if (n == replayed_header) {
      r.replays = to_count(v);
    }
  }
  if (!source_topic.empty()) {
    r.origin = source_topic + "/" + source_partition + "/" + source_offset;
  }
  return r;
}

std::string error_text(rd_kafka_error_t* e) {
  return e != nullptr ? rd_kafka_error_string(e) : "unknown error";
}

} // namespace

struct kafka_dlq::clients {
  kafka_settings settings;
  key_eraser forget;
  std::vector<std::string> dlq_topics;
  rd_kafka_t* consumer = nullptr;
  rd_kafka_t* producer = nullptr;
  std::set<std::string> settled_topics_ready; // created or seen to exist
  // Per dead-letter topic, the ids marked settled: read once, then kept up
  // to date with this tool's own marks (its open transaction would hold a
  // committed-only reader of the settled topic back).
  std::map<std::string, std::unordered_set<std::string>> settled;
  bool in_transaction_now = false;

  ~clients() {
    if (in_transaction_now) {
      // Failed half-way: abort now, or the source partitions' committed
      // readers wait for the transaction's timeout.
      kafka::error_ptr aborted{rd_kafka_abort_transaction(producer, timeout_ms)};
    }
    if (consumer != nullptr) {
      rd_kafka_consumer_close(consumer);
      rd_kafka_destroy(consumer);
    }
    if (producer != nullptr) {
      rd_kafka_destroy(producer);
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("kafka dlq (" + settings.brokers + "): " + what);
  }

  rd_kafka_t* make(rd_kafka_type_t type, const kafka::property_list& props) {
    std::string error;
    auto conf = kafka::make_conf(props, error);
    if (!conf) {
      fail(error);
    }
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
    if (rk == nullptr) {
      fail(err);
    }
    conf.release(); // rd_kafka_new owns it now
    return rk;
  }

  void start() {
    // A reader outside the deployment's group: it assigns partitions
    // itself, never joins, never commits.
    auto reader = kafka::consumer_properties(settings);
    reader.emplace_back("group.id", settings.group_id + ".mailroom-dlq");
    reader.emplace_back("enable.partition.eof", "true");
    reader.emplace_back("isolation.level", "read_committed");
    consumer = make(RD_KAFKA_CONSUMER, reader);
    rd_kafka_poll_set_consumer(consumer);
    // One transactional id per group: a second replay of the same group
    // fences the first, and this one aborts what a killed one left open.
    auto writer = kafka::producer_properties(settings);
    writer.emplace_back("transactional.id", "mailroom-dlq-" + settings.group_id);
    producer = make(RD_KAFKA_PRODUCER, writer);
    if (auto* e = rd_kafka_init_transactions(producer, timeout_ms)) {
      kafka::error_ptr owned{e};
      fail("cannot start a transaction: " + error_text(e) +
           " (replays need transactions: the brokers' transaction.state.log settings)");
    }
    for (const auto& t : dlq_topics) {
      if (partitions(t) < 0) {
        fail("dead-letter topic \"" + t + "\" does not exist");
      }
    }
  }

  // Returns the partition count of `topic`, -1 when it does not exist.
  int partitions(const std::string& topic) {
    const rd_kafka_metadata_t* md = nullptr;
    if (auto err = rd_kafka_metadata(consumer, 1, nullptr, &md, timeout_ms);
        err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fail(std::string{"no metadata: "} + rd_kafka_err2str(err));
    }
    int n = -1;
    for (int t = 0; t < md->topic_cnt; ++t) {
      if (topic == md->topics[t].topic && md->topics[t].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        n = md->topics[t].partition_cnt;
      }
    }
    rd_kafka_metadata_destroy(md);
    return n;
  }

  // Calls `visit` with the records of `topic`'s partition `p` from `from`
  // up to (not including) the end offset when the call began; stops early
  // when `visit` returns false, and returns false then.
  bool read_partition(const std::string& topic, std::int32_t p, std::int64_t from,
                      const std::function<bool(const rd_kafka_message_t*)>& visit) {
    std::int64_t low = 0, high = 0;
    if (auto err = rd_kafka_query_watermark_offsets(consumer, topic.c_str(), p, &low, &high,
                                                    timeout_ms);
        err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fail("no offsets for " + topic + "/" + std::to_string(p) + ": " + rd_kafka_err2str(err));
    }
    from = std::max(from, low);
    if (from >= high) {
      return true;
    }
    auto list = kafka::make_partition_list(1);
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = from;
    rd_kafka_assign(consumer, list.get());
    bool go_on = true;
    auto quiet_since = std::chrono::steady_clock::now();
    for (;;) {
      kafka::message_ptr m{rd_kafka_consumer_poll(consumer, 200)};
      if (!m) {
        if (std::chrono::steady_clock::now() - quiet_since >
            std::chrono::milliseconds{timeout_ms}) {
          rd_kafka_assign(consumer, nullptr);
          fail("no record of " + topic + "/" + std::to_string(p) + " within " +
               std::to_string(timeout_ms) + " ms");
        }
        continue;
      }
      quiet_since = std::chrono::steady_clock::now();
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        break; // a transaction's markers can sit at the end: EOF, not high - 1
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_assign(consumer, nullptr);
        fail("reading " + topic + ": " + rd_kafka_message_errstr(m.get()));
      }
      if (m->offset >= high) {
        break;
      }
      if (!visit(m.get())) {
        go_on = false;
        break;
      }
      if (m->offset >= high - 1) {
        break;
      }
    }
    rd_kafka_assign(consumer, nullptr);
    return go_on;
  }

  // The ids marked replayed or purged in `dlq_topic`'s settled topic.
  std::unordered_set<std::string>& settled_ids(const std::string& dlq_topic) {
    if (auto known = settled.find(dlq_topic); known != settled.end()) {
      return known->second;
    }
    auto& out = settled[dlq_topic];
    const auto topic = settled_topic_of(dlq_topic);
    const int n = partitions(topic);
    for (int p = 0; p < n; ++p) {
      read_partition(topic, p, 0, [&](const rd_kafka_message_t* m) {
        if (m->key != nullptr) {
          out.emplace(static_cast<const char*>(m->key), m->key_len);
        }
        return true;
      });
    }
    if (n >= 0) {
      settled_topics_ready.insert(topic);
    }
    return out;
  }

  // Creates `dlq_topic`'s settled topic unless it exists: compacted, one
  // partition, the brokers' replication factor.
  void ensure_settled_topic(const std::string& dlq_topic) {
    const auto topic = settled_topic_of(dlq_topic);
    if (settled_topics_ready.count(topic) != 0) {
      return;
    }
    char err[512];
    rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), 1, -1, err, sizeof err);
    if (nt == nullptr) {
      fail("cannot describe topic \"" + topic + "\": " + err);
    }
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    kafka::queue_ptr q{rd_kafka_queue_new(producer)};
    rd_kafka_CreateTopics(producer, &nt, 1, nullptr, q.get());
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q.get(), timeout_ms + 1000);
    std::string problem = ev == nullptr ? "no answer" : "";
    if (ev != nullptr) {
      std::size_t cnt = 0;
      const auto* res = rd_kafka_event_CreateTopics_result(ev);
      const auto** topics = res != nullptr ? rd_kafka_CreateTopics_result_topics(res, &cnt)
                                           : nullptr;
      auto code = cnt == 1 ? rd_kafka_topic_result_error(topics[0]) : rd_kafka_event_error(ev);
      if (code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        problem = cnt == 1 && rd_kafka_topic_result_error_string(topics[0]) != nullptr
                      ? rd_kafka_topic_result_error_string(topics[0])
                      : rd_kafka_err2str(code);
      }
      rd_kafka_event_destroy(ev);
    }
    if (!problem.empty()) {
      fail("cannot create topic \"" + topic + "\" for the marks of replayed and purged "
           "records: " + problem + " (create it, compacted, or grant CreateTopics)");
    }
    settled_topics_ready.insert(topic);
  }

  void produce(const std::string& topic, const std::optional<std::string>& key,
               const std::string* value,
               const std::vector<std::pair<std::string, std::string>>& headers) {
    rd_kafka_headers_t* hs = rd_kafka_headers_new(headers.size());
    for (const auto& [name, v] : headers) {
      rd_kafka_header_add(hs, name.data(), static_cast<ssize_t>(name.size()), v.data(),
                          static_cast<ssize_t>(v.size()));
    }
    // The macros cast their arguments: each is one plain expression.
    const void* key_data = key ? key->data() : nullptr;
    const std::size_t key_size = key ? key->size() : 0;
    void* value_data = value != nullptr ? const_cast<char*>(value->data()) : nullptr;
    const std::size_t value_size = value != nullptr ? value->size() : 0;
    auto err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_VALUE(value_data, value_size),
        RD_KAFKA_V_HEADERS(hs), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_headers_destroy(hs); // not handed over on failure
      throw std::runtime_error("produce to " + topic + ": " + rd_kafka_err2str(err));
    }
  }

  // Begins a transaction unless one is open; the changes go into it.
  void begin() {
    if (in_transaction_now) {
      return;
    }
    if (auto* e = rd_kafka_begin_transaction(producer)) {
      kafka::error_ptr owned{e};
      fail("cannot begin a transaction: " + error_text(e));
    }
    in_transaction_now = true;
  }

  // Aborts the open transaction and throws `why`: nothing of it is visible.
  [[noreturn]] void abort_and_fail(const std::string& why) {
    kafka::error_ptr aborted{rd_kafka_abort_transaction(producer, timeout_ms)};
    in_transaction_now = false;
    fail(why);
  }

  void commit() {
    if (!in_transaction_now) {
      return;
    }
    for (int tries = 0;; ++tries) {
      kafka::error_ptr e{rd_kafka_commit_transaction(producer, timeout_ms)};
      if (!e) {
        in_transaction_now = false;
        return;
      }
      if (rd_kafka_error_is_retriable(e.get()) && tries < 3) {
        continue; // the outcome is not known yet: committing again is safe
      }
      abort_and_fail("the transaction did not commit (nothing of it is visible): " +
                     error_text(e.get()));
    }
  }
};

kafka_dlq::kafka_dlq(kafka_settings settings, key_eraser forget)
    : c_(std::make_unique<clients>()) {
  c_->settings = std::move(settings);
  c_->forget = std::move(forget);
  for (const auto& t : c_->settings.topics) {
    auto d = dlq_topic_for(c_->settings, t);
    if (std::find(c_->dlq_topics.begin(), c_->dlq_topics.end(), d) == c_->dlq_topics.end()) {
      c_->dlq_topics.push_back(d);
    }
  }
  c_->start();
}

kafka_dlq::~kafka_dlq() = default;

std::string kafka_dlq::settled_topic_of(const std::string& dlq_topic) {
  return dlq_topic + ".settled";
}

std::string kafka_dlq::describe() const {
  std::string topics;
  for (const auto& t : c_->dlq_topics) {
    topics += (topics.empty() ? "\"" : ", \"") + t + "\"";
  }
  return std::string{c_->dlq_topics.size() == 1 ? "topic " : "topics "} + topics + " at " +
         c_->settings.brokers;
}

void kafka_dlq::for_each(const std::function<bool(const dlq_record&)>& visit) {
  for (const auto& topic : c_->dlq_topics) {
    const auto& settled = c_->settled_ids(topic);
    const int n = c_->partitions(topic);
    for (int p = 0; p < n; ++p) {
      bool go_on = c_->read_partition(topic, p, 0, [&](const rd_kafka_message_t* m) {
        if (settled.count(id_text(topic, m->partition, m->offset)) != 0) {
          return true;
        }
        return visit(record_of(m, topic));
      });
      if (!go_on) {
        return;
      }
    }
  }
}

bool kafka_dlq::find(const std::string& id, dlq_record& out) {
  auto where = parse_id(id);
  if (!where || std::find(c_->dlq_topics.begin(), c_->dlq_topics.end(), where->topic) ==
                    c_->dlq_topics.end()) {
    return false;
  }
  if (c_->settled_ids(where->topic).count(id) != 0) {
    return false;
  }
  bool found = false;
  c_->read_partition(where->topic, where->partition, where->offset,
                     [&](const rd_kafka_message_t* m) {
                       found = m->offset == where->offset;
                       if (found) {
                         out = record_of(m, where->topic);
                       }
                       return false;
                     });
  return found;
}

dlq_change kafka_dlq::replay(const dlq_record& r) {
  auto where = parse_id(r.id);
  const auto source = r.origin.substr(0, r.origin.find('/'));
  if (!where || source.empty()) {
    c_->fail("record " + r.id + " does not say where it came from (no mailroom.source.topic "
             "header): it cannot be replayed");
  }
  auto& marks = c_->settled_ids(where->topic);
  if (marks.count(r.id) != 0) {
    return dlq_change::missing;
  }
  c_->ensure_settled_topic(where->topic);
  auto headers = r.headers;
  headers.emplace_back(replayed_header, std::to_string(r.replays + 1));
  headers.emplace_back(replay_of_header, r.id);
  const std::string mark{"replayed"};
  c_->begin();
  try {
    c_->produce(source, r.broker_key, r.has_payload ? &r.payload : nullptr, headers);
    c_->produce(settled_topic_of(where->topic), r.id, &mark, {});
    // Before the commit: should it fail, the record is still in the DLQ and
    // its key merely forgotten, which a later replay needs anyway.
    if (c_->forget && !r.key.empty()) {
      c_->forget(source, r.key);
    }
  } catch (const std::exception& e) {
    c_->abort_and_fail(e.what());
  }
  marks.insert(r.id);
  return dlq_change::done;
}

dlq_change kafka_dlq::remove(const dlq_record& r) {
  auto where = parse_id(r.id);
  if (!where) {
    return dlq_change::missing;
  }
  auto& marks = c_->settled_ids(where->topic);
  if (marks.count(r.id) != 0) {
    return dlq_change::missing;
  }
  c_->ensure_settled_topic(where->topic);
  const std::string mark{"purged"};
  c_->begin();
  try {
    c_->produce(settled_topic_of(where->topic), r.id, &mark, {});
  } catch (const std::exception& e) {
    c_->abort_and_fail(e.what());
  }
  marks.insert(r.id);
  return dlq_change::done;
}

void kafka_dlq::commit() { c_->commit(); }

std::size_t kafka_dlq::changes_per_commit() const { return 200; }

} // namespace mailroom
