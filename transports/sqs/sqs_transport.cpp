#include "transports/sqs/sqs_transport.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include "core/retry_policy.hpp"
#include "core/unix_time.hpp"
#include "transports/sqs/sqs_client_settings.hpp"
#include "transports/sqs/sqs_dlq_format.hpp"

namespace mailroom {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::size_t max_batch = 10;
constexpr int max_visibility_s = 43200; // 12 h, SQS's limit
// Tries of one delete entry before the ack reports a failure (the engine
// then retries the whole call; entries deleted meanwhile are remembered).
constexpr int delete_tries = 4;
// Receipts remembered as deleted, so an ack repeated after a failure does
// not find them stale.
constexpr std::size_t remembered_deletes = 8192;
// DeleteMessageBatch calls one ack sends at once (each on its own connection).
constexpr std::size_t parallel_deletes = 4;

// The answers to a receipt that is no longer the latest of its message (it
// was received again), or of a message deleted meanwhile.
bool stale_code(const std::string& code) {
  return code == "ReceiptHandleIsInvalid" || code == "MessageNotInflight" ||
         code == "InvalidReceiptHandle";
}

int whole_seconds(milliseconds d) {
  if (d.count() <= 0) {
    return 0;
  }
  auto s = (d.count() + 999) / 1000;
  return static_cast<int>(std::min<std::int64_t>(s, max_visibility_s));
}

template <class T> std::vector<std::vector<T>> chunks(const std::vector<T>& all) {
  std::vector<std::vector<T>> out;
  for (std::size_t i = 0; i < all.size(); i += max_batch) {
    out.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(i),
                     all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), i + max_batch)));
  }
  return out;
}

} // namespace

struct sqs_transport::counters {
  std::atomic<std::uint64_t> receive_calls{0}, received{0}, receive_errors{0}, deleted{0},
      delete_retries{0}, nacked{0}, extended{0}, lost{0}, dead_lettered{0},
      stale_settles{0}, over_received{0}, handed_back{0};
};

// Clients for the settle calls (settler, lease keeper, dead-letter writer,
// close): an sqs_api serves one thread at a time, so each call borrows one.
class sqs_transport::api_pool {
public:
  api_pool(sqs_settings settings, aws_credentials credentials)
      : settings_(std::move(settings)), credentials_(std::move(credentials)) {}

  /// A borrowed client, given back when it goes.
  class borrowed {
  public:
    borrowed(api_pool& pool, std::unique_ptr<sqs_api> api)
        : pool_(pool), api_(std::move(api)) {}
    ~borrowed() { pool_.give_back(std::move(api_)); }
    borrowed(const borrowed&) = delete;
    borrowed& operator=(const borrowed&) = delete;
    sqs_api* operator->() { return api_.get(); }

  private:
    api_pool& pool_;
    std::unique_ptr<sqs_api> api_;
  };

  borrowed take() {
    std::unique_ptr<sqs_api> api;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (!free_.empty()) {
        api = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!api) {
      api = std::make_unique<sqs_api>(settings_, credentials_);
    }
    return borrowed{*this, std::move(api)};
  }

  const sqs_settings& settings() const { return settings_; }
  const aws_credentials& credentials() const { return credentials_; }

private:
  void give_back(std::unique_ptr<sqs_api> api) {
    std::lock_guard<std::mutex> guard{mutex_};
    free_.push_back(std::move(api));
  }

  const sqs_settings settings_;
  const aws_credentials credentials_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<sqs_api>> free_;
};

sqs_transport::sqs_transport(sqs_transport_settings settings)
    : sqs_transport(settings, credentials_of(settings)) {}

sqs_transport::sqs_transport(sqs_transport_settings settings, aws_credentials credentials)
    : settings_(std::move(settings)), region_(effective_region(settings_)),
      credentials_(std::move(credentials)), counters_(std::make_unique<counters>()) {
  if (settings_.queue_url.empty() && settings_.queue_name.empty()) {
    throw std::invalid_argument("sqs: queue_url or queue_name is required");
  }
  if (region_.empty()) {
    throw std::invalid_argument("sqs: no region (set transport.sqs.region or AWS_REGION)");
  }
  apis_ = std::make_unique<api_pool>(client_settings_of(settings_, region_), credentials_);
  start();
}

sqs_transport::~sqs_transport() {
  (void)close();
}

// Resolves and checks the queues before anything is received: a missing
// queue, refused access or a dead-letter that could go nowhere stops the run
// here, with the reason, rather than in a retry loop later.
void sqs_transport::start() {
  auto api = apis_->take();
  const auto endpoint = api->endpoint();
  const auto deadline = clock::now() + milliseconds{settings_.startup_timeout_ms};
  auto patiently = [&](auto call) {
    for (;;) {
      auto r = call();
      if (r || r.status.failure != failure_class::transient || clock::now() >= deadline) {
        return r;
      }
      std::this_thread::sleep_for(milliseconds{200});
    }
  };
  auto failed = [&](const std::string& what, const io_result& why) {
    auto text = why.failure == failure_class::transient
                    ? "cannot reach SQS at " + endpoint + " within " +
                          std::to_string(settings_.startup_timeout_ms) + " ms (" + what +
                          "): " + why.what
                    : "cannot use " + what + ": " + why.what;
    return std::runtime_error(text);
  };

  queue_url_ = settings_.queue_url;
  if (queue_url_.empty()) {
    auto r = patiently([&] {
      return api->get_queue_url(settings_.queue_name, settings_.queue_owner_account_id);
    });
    if (!r) {
      throw failed("SQS queue \"" + settings_.queue_name + "\" at " + endpoint, r.status);
    }
    queue_url_ = r.value;
  }
  queue_name_ = queue_name_of(queue_url_);
  auto attrs = patiently([&] { return api->get_queue_attributes(queue_url_); });
  if (!attrs) {
    throw failed("SQS queue " + queue_url_, attrs.status);
  }
  fifo_ = attrs.value.fifo;
  if (!settings_.dlq_queue_url.empty()) {
    auto dlq = patiently([&] { return api->get_queue_attributes(settings_.dlq_queue_url); });
    if (!dlq) {
      throw failed("SQS dead-letter queue " + settings_.dlq_queue_url, dlq.status);
    }
    depth_queue_url_ = settings_.dlq_queue_url;
    spdlog::info("sqs: dead-letters go to {}", settings_.dlq_queue_url);
  } else if (attrs.value.redrive_policy) {
    const auto& policy = *attrs.value.redrive_policy;
    spdlog::info("sqs: transport.sqs.dlq_queue_url is empty: dead-lettered messages are made "
                 "visible again and left to the redrive policy of {} (moved to {} after {} "
                 "receives)",
                 queue_name_, policy.dead_letter_target_arn, policy.max_receive_count);
    // For dead_letter_depth() only.
    if (auto url = api->get_queue_url_of_arn(policy.dead_letter_target_arn)) {
      depth_queue_url_ = url.value;
    }
  } else {
    throw std::runtime_error("SQS queue " + queue_url_ +
                             " has no redrive policy and transport.sqs.dlq_queue_url is "
                             "empty: dead-letters would have nowhere to go (set "
                             "dlq_queue_url, or give the queue a redrive policy)");
  }
  for (std::uint32_t i = 0; i < settings_.receivers; ++i) {
    receivers_.emplace_back([this, i] { receive_loop(i); });
  }
}

// ---- the receivers ---------------------------------------------------------------

void sqs_transport::receive_loop(std::size_t index) {
  sqs_api api{apis_->settings(), apis_->credentials()};
  api.set_abort_flag(&stop_); // close() cuts a waiting long poll short
  retry_policy backoff{{milliseconds{100}, milliseconds{5000}, 0},
                       std::random_device{}() + index};
  std::uint32_t failures = 0;
  sqs_receive_request request;
  request.queue_url = queue_url_;
  request.wait_time_s = static_cast<int>(settings_.wait_time_s);
  request.visibility_timeout_s = static_cast<int>(settings_.visibility_timeout_s);
  while (!stop_.load(std::memory_order_acquire)) {
    std::size_t n = 0;
    {
      std::unique_lock<std::mutex> lock{mutex_};
      wanted_.wait(lock, [this] { return closing_ || buffer_.size() + reserved_ < demand_; });
      if (closing_) {
        return;
      }
      n = std::min<std::size_t>(settings_.max_messages,
                                demand_ - buffer_.size() - reserved_);
      reserved_ += n;
    }
    request.max_messages = static_cast<int>(n);
    auto r = api.receive_message(request);
    auto now = clock::now();
    std::vector<std::string> late; // received while closing: handed back
    bool was_out = false;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      reserved_ -= n;
      if (r) {
        fatal_.clear();
        was_out = outage_;
        outage_ = false;
        for (auto& m : r.value) {
          if (closing_) {
            late.push_back(m.receipt_handle);
          } else {
            buffer_.push_back({envelope_of(std::move(m), now), now});
          }
        }
      }
    }
    if (r) {
      counters_->receive_calls.fetch_add(1, std::memory_order_relaxed);
      counters_->received.fetch_add(r.value.size(), std::memory_order_relaxed);
      if (!r.value.empty()) {
        readable_.notify_all();
      }
      if (was_out) {
        spdlog::info("sqs: receiving from {} works again after {} ms", queue_name_,
                     std::chrono::duration_cast<milliseconds>(now - outage_began_).count());
      }
      failures = 0;
      if (!late.empty() && hand_back(late)) {
        counters_->handed_back.fetch_add(late.size(), std::memory_order_relaxed);
      }
      if (r.value.empty() && settings_.wait_time_s == 0) {
        // Short polls of an empty queue: not in a tight loop.
        std::unique_lock<std::mutex> lock{mutex_};
        wanted_.wait_for(lock, milliseconds{200}, [this] { return closing_; });
      }
      continue;
    }
    if (stop_.load(std::memory_order_acquire)) {
      return; // cut short by close()
    }
    counters_->receive_errors.fetch_add(1, std::memory_order_relaxed);
    ++failures;
    {
      std::unique_lock<std::mutex> lock{mutex_};
      if (!outage_) {
        // One line per outage, whichever receiver meets it first.
        outage_ = true;
        outage_began_ = now;
        spdlog::warn("sqs: receiving from {} failed, retrying with backoff: {}", queue_name_,
                     r.status.what);
      }
      if (r.status.failure == failure_class::fatal) {
        fatal_ = r.status.what;
        readable_.notify_all();
      }
      wanted_.wait_for(lock, backoff.delay(std::min<std::uint32_t>(failures, 8)),
                       [this] { return closing_; });
    }
  }
}

envelope sqs_transport::envelope_of(sqs_message&& m, clock::time_point now) {
  envelope e;
  e.id = m.message_id;
  e.topic = queue_name_;
  e.ordering_key = m.message_group_id;
  e.payload = std::move(m.body);
  e.attempt = static_cast<std::uint32_t>(std::max(1, m.approximate_receive_count));
  e.received = now;
  e.handle.seq = ++seq_;
  e.handle.handle = std::move(m.receipt_handle);
  for (auto& [name, value] : m.message_attributes) {
    bool binary = value.data_type.rfind("Binary", 0) == 0;
    e.headers.emplace_back(name, binary ? value.binary_value : value.string_value);
    if (!settings_.key_attribute.empty() && name == settings_.key_attribute && !binary &&
        !value.string_value.empty()) {
      e.key = value.string_value;
    }
  }
  // A replay's key is its own, shared by the copies of one replay only.
  if (auto replay = sqs_dlq_format::replay_key(e.headers, e.key)) {
    e.key = std::move(*replay);
  }
  if (e.key.empty()) {
    e.key = e.id;
  }
  if (settings_.max_receives != 0 && e.attempt > settings_.max_receives) {
    // A message received this often without being settled crashed its
    // consumers each time: the engine dead-letters it unhandled.
    e.poison = "receive count " + std::to_string(e.attempt) + " exceeds " +
               std::to_string(settings_.max_receives);
    counters_->over_received.fetch_add(1, std::memory_order_relaxed);
  }
  return e;
}

// ---- the engine's calls ------------------------------------------------------------

io_result sqs_transport::poll(std::size_t max, std::chrono::milliseconds wait,
                              envelope_batch& out) {
  // Buffered longer than this, a message's lease as the engine would count it
  // (from now) would end too late: it is handed back instead.
  const auto max_age = milliseconds{settings_.visibility_timeout_s * 1000ULL / 4};
  std::vector<std::string> expired;
  std::size_t got = 0;
  std::string fatal;
  {
    std::unique_lock<std::mutex> lock{mutex_};
    if (closing_ || max == 0) {
      return io_result::success();
    }
    auto now = clock::now();
    const auto deadline = now + wait;
    for (;;) {
      while (got < max && !buffer_.empty()) {
        auto b = std::move(buffer_.front());
        buffer_.pop_front();
        if (now - b.received > max_age) {
          expired.push_back(std::move(b.msg.handle.handle));
          continue;
        }
        out.push_back(std::move(b.msg));
        ++got;
      }
      demand_ = max - got; // what the receivers fetch for the next poll
      if (demand_ > buffer_.size() + reserved_) {
        wanted_.notify_all();
      }
      if (got > 0 || closing_ || !fatal_.empty() || now >= deadline) {
        fatal = got == 0 ? fatal_ : std::string{};
        break;
      }
      readable_.wait_until(lock, deadline);
      now = clock::now();
    }
  }
  if (!expired.empty() && hand_back(expired)) {
    counters_->handed_back.fetch_add(expired.size(), std::memory_order_relaxed);
  }
  return fatal.empty() ? io_result::success() : io_result::fatal(fatal);
}

io_result sqs_transport::ack(const std::vector<const envelope*>& batch) {
  std::vector<std::size_t> stale;
  return ack_checked(batch, stale);
}

io_result sqs_transport::ack_checked(const std::vector<const envelope*>& batch,
                                     std::vector<std::size_t>& stale) {
  // Indices into `batch` still to delete.
  std::vector<std::size_t> todo;
  {
    std::lock_guard<std::mutex> guard{deleted_mutex_};
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (recently_deleted_.count(batch[i]->handle.handle) == 0) {
        todo.push_back(i);
      }
    }
  }
  auto all = chunks(todo);
  // A settled batch of a few hundred is tens of DeleteMessageBatch calls of
  // one round trip each: up to `parallel_deletes` go at once, each on a
  // connection of its own, so a settle costs a few round trips, not tens.
  std::atomic<std::size_t> next{0};
  std::mutex merge;
  io_result first_failure = io_result::success();
  auto work = [&] {
    std::vector<std::size_t> mine;
    for (auto c = next++; c < all.size(); c = next++) {
      auto r = delete_chunk(batch, all[c], mine);
      if (!r) {
        std::lock_guard<std::mutex> guard{merge};
        // A fatal failure outranks a transient one: it says more.
        if (first_failure || (r.failure != failure_class::transient &&
                              first_failure.failure == failure_class::transient)) {
          first_failure = r;
        }
      }
    }
    std::lock_guard<std::mutex> guard{merge};
    stale.insert(stale.end(), mine.begin(), mine.end());
  };
  std::vector<std::thread> helpers;
  auto threads = std::min(all.size(), parallel_deletes);
  for (std::size_t t = 1; t < threads; ++t) {
    helpers.emplace_back(work);
  }
  work();
  for (auto& h : helpers) {
    h.join();
  }
  counters_->stale_settles.fetch_add(stale.size(), std::memory_order_relaxed);
  return first_failure;
}

io_result sqs_transport::delete_chunk(const std::vector<const envelope*>& batch,
                                      const std::vector<std::size_t>& chunk,
                                      std::vector<std::size_t>& stale) {
  retry_policy backoff{{milliseconds{50}, milliseconds{1000}, 0}};
  auto api = apis_->take();
  auto pending = chunk;
  std::string last_error;
  for (int attempt = 1; attempt <= delete_tries && !pending.empty(); ++attempt) {
    if (attempt > 1) {
      counters_->delete_retries.fetch_add(pending.size(), std::memory_order_relaxed);
      std::this_thread::sleep_for(backoff.delay(static_cast<std::uint32_t>(attempt - 1)));
    }
    std::vector<sqs_delete_entry> entries;
    for (auto i : pending) {
      entries.push_back({std::to_string(i), batch[i]->handle.handle});
    }
    auto r = api->delete_message_batch(queue_url_, entries);
    if (!r) {
      if (r.status.failure != failure_class::transient) {
        return r.status;
      }
      last_error = r.status.what;
      continue;
    }
    std::vector<std::size_t> again;
    std::vector<std::string> done;
    for (std::size_t j = 0; j < pending.size(); ++j) {
      const auto& e = r.value.entries[j];
      if (e.ok) {
        done.push_back(batch[pending[j]]->handle.handle);
      } else if (stale_code(e.code)) {
        stale.push_back(pending[j]);
      } else {
        again.push_back(pending[j]);
        last_error = e.code + ": " + e.message;
      }
    }
    counters_->deleted.fetch_add(done.size(), std::memory_order_relaxed);
    remember_deleted(done);
    pending = std::move(again);
  }
  if (!pending.empty()) {
    return io_result::transient(
        "SQS DeleteMessageBatch: " + std::to_string(pending.size()) +
        " entries not deleted after " + std::to_string(delete_tries) +
        " tries: " + last_error);
  }
  return io_result::success();
}

void sqs_transport::remember_deleted(std::vector<std::string>& handles) {
  std::lock_guard<std::mutex> guard{deleted_mutex_};
  for (auto& h : handles) {
    if (recently_deleted_.insert(h).second) {
      deleted_order_.push_back(std::move(h));
    }
  }
  while (deleted_order_.size() > remembered_deletes) {
    recently_deleted_.erase(deleted_order_.front());
    deleted_order_.pop_front();
  }
}

io_result sqs_transport::change_visibility(const receipt& r, int seconds_from_now) {
  auto api = apis_->take();
  auto changed = api->change_message_visibility(queue_url_, r.handle, seconds_from_now);
  if (changed) {
    return io_result::success();
  }
  if (stale_code(changed.error.code)) {
    counters_->stale_settles.fetch_add(1, std::memory_order_relaxed);
    return io_result::stale_delivery();
  }
  return changed.status;
}

io_result sqs_transport::nack(const envelope& msg, std::chrono::milliseconds delay) {
  auto r = change_visibility(msg.handle, whole_seconds(delay));
  if (r && !r.stale) {
    counters_->nacked.fetch_add(1, std::memory_order_relaxed);
  }
  return r;
}

io_result sqs_transport::hand_back(const std::vector<std::string>& handles) {
  auto api = apis_->take();
  io_result out;
  for (const auto& chunk : chunks(handles)) {
    std::vector<sqs_visibility_entry> entries;
    for (const auto& h : chunk) {
      entries.push_back({"", h, 0});
    }
    auto r = api->change_message_visibility_batch(queue_url_, entries);
    if (!r) {
      // They come back by themselves once their visibility timeout ends.
      spdlog::debug("sqs: handing back {} messages failed: {}", chunk.size(), r.status.what);
      out = r.status;
    }
  }
  return out;
}

std::optional<lease_terms> sqs_transport::lease() const {
  if (settings_.heartbeat_interval_s == 0) {
    return std::nullopt;
  }
  return lease_terms{seconds{settings_.visibility_timeout_s},
                     seconds{settings_.heartbeat_interval_s}};
}

io_result sqs_transport::extend(const std::vector<const receipt*>& receipts,
                                clock::time_point until, std::vector<std::size_t>& lost) {
  auto left = std::chrono::duration_cast<milliseconds>(until - clock::now());
  int timeout = std::max(static_cast<int>(settings_.visibility_timeout_s), whole_seconds(left));
  timeout = std::min(timeout, max_visibility_s);
  auto api = apis_->take();
  io_result out;
  std::uint64_t extended = 0, n_lost = 0;
  for (std::size_t first = 0; first < receipts.size(); first += max_batch) {
    auto end = std::min(receipts.size(), first + max_batch);
    std::vector<sqs_visibility_entry> entries;
    for (auto i = first; i < end; ++i) {
      entries.push_back({std::to_string(i), receipts[i]->handle, timeout});
    }
    auto r = api->change_message_visibility_batch(queue_url_, entries);
    if (!r && r.status.failure == failure_class::transient) {
      r = api->change_message_visibility_batch(queue_url_, entries);
    }
    if (!r) {
      out = r.status;
      continue;
    }
    for (std::size_t j = 0; j < r.value.entries.size(); ++j) {
      const auto& e = r.value.entries[j];
      if (e.ok) {
        ++extended;
      } else if (stale_code(e.code)) {
        lost.push_back(first + j);
        ++n_lost;
      } else {
        out = io_result::transient("SQS ChangeMessageVisibilityBatch: " + e.code + ": " +
                                   e.message);
      }
    }
  }
  counters_->extended.fetch_add(extended, std::memory_order_relaxed);
  counters_->lost.fetch_add(n_lost, std::memory_order_relaxed);
  return out;
}

io_result sqs_transport::dead_letter(const envelope& msg, const dead_letter_record& record) {
  if (settings_.dlq_queue_url.empty()) {
    // The queue's redrive policy moves it once its receives reach the limit.
    auto r = change_visibility(msg.handle, 0);
    if (r && !r.stale) {
      counters_->dead_lettered.fetch_add(1, std::memory_order_relaxed);
    }
    return r;
  }
  // Still ours? A stale delivery must write no record (the newer one settles
  // it); the check also keeps it invisible while the record is written.
  if (auto r = change_visibility(msg.handle, static_cast<int>(settings_.visibility_timeout_s));
      !r || r.stale) {
    return r;
  }
  sqs_send_request send;
  send.queue_url = settings_.dlq_queue_url;
  send.body = record.payload.empty() ? std::string{" "} : record.payload;
  nlohmann::json errors = record.errors;
  auto add = [&send](const char* name, std::string value, const char* type = "String") {
    if (!value.empty()) {
      send.attributes[name] = {type, std::move(value), {}};
    }
  };
  namespace format = sqs_dlq_format;
  auto at = record.dead_lettered_at_ms != 0 ? record.dead_lettered_at_ms : unix_ms_now();
  add(format::reason, record.reason.empty() ? std::string{"unknown"} : record.reason);
  add(format::attempts, std::to_string(record.attempts), "Number");
  add(format::errors, errors.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  add(format::source_queue, queue_url_);
  add(format::source_message_id, msg.id);
  add(format::first_failure_ms, std::to_string(record.first_failure_ms), "Number");
  add(format::key, msg.key);
  add(format::dead_lettered_at_ms, std::to_string(at), "Number");
  if (record.payload.empty()) {
    add(format::body, "empty"); // SQS cannot carry an empty body
  }
  // What `mailroom dlq replay` writes back with the body.
  add(format::original, format::pack({msg.headers, msg.ordering_key}));
  if (send.queue_url.size() > 5 &&
      send.queue_url.compare(send.queue_url.size() - 5, 5, ".fifo") == 0) {
    // The same record written twice (a lost reply) is one record.
    send.group_id = msg.ordering_key.empty() ? std::string{"mailroom"} : msg.ordering_key;
    send.deduplication_id = msg.id;
  }
  auto api = apis_->take();
  auto sent = api->send_message(send);
  if (!sent && sent.status.failure == failure_class::poison) {
    // Bytes SQS cannot carry (not UTF-8): the record keeps them as base64.
    send.body = sqs_dlq_format::base64_encode(record.payload);
    send.attributes[sqs_dlq_format::body] = {"String", "base64", {}};
    sent = api->send_message(send);
  }
  if (!sent) {
    return sent.status.failure == failure_class::poison
               ? io_result::fatal(sent.status.what)
               : sent.status;
  }
  counters_->dead_lettered.fetch_add(1, std::memory_order_relaxed);
  // The record is safe: the original goes. A failed delete leaves it to come
  // back (and be dead-lettered again): a duplicate record, never a loss.
  auto deleted = api->delete_message_batch(queue_url_, {{"0", msg.handle.handle}});
  if (deleted && deleted.value.entries.size() == 1 && deleted.value.entries[0].ok) {
    counters_->deleted.fetch_add(1, std::memory_order_relaxed);
  } else {
    spdlog::warn("sqs: message {} was dead-lettered but its delete failed: {}", msg.id,
                 deleted ? deleted.value.entries.empty() ? std::string{"no answer"}
                                                         : deleted.value.entries[0].code
                         : deleted.status.what);
  }
  return io_result::success();
}

std::string sqs_transport::unreachable(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> guard{probe_mutex_};
  if (!probe_api_) {
    auto s = apis_->settings();
    s.http.request_timeout = timeout;
    s.http.connect_timeout = timeout;
    probe_api_ = std::make_unique<sqs_api>(s, apis_->credentials());
  }
  auto r = probe_api_->get_queue_attributes(queue_url_, {"QueueArn"});
  return r ? std::string{} : "SQS queue " + queue_url_ + ": " + r.status.what;
}

std::optional<std::uint64_t> sqs_transport::dead_letter_depth() {
  if (depth_queue_url_.empty()) {
    return std::nullopt;
  }
  auto api = apis_->take();
  auto r = api->get_queue_attributes(depth_queue_url_,
                                     {"ApproximateNumberOfMessages",
                                      "ApproximateNumberOfMessagesNotVisible",
                                      "ApproximateNumberOfMessagesDelayed"});
  if (!r) {
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(r.value.approximate_number_of_messages +
                                    r.value.approximate_number_of_messages_not_visible +
                                    r.value.approximate_number_of_messages_delayed);
}

std::vector<std::pair<std::string, std::uint64_t>> sqs_transport::stats_report() const {
  auto s = stats();
  return {{"received over max_receives", s.over_received},
          {"handed back unpolled", s.handed_back},
          {"delete entries resent", s.delete_retries}};
}

sqs_transport_stats sqs_transport::stats() const {
  sqs_transport_stats s;
  const auto& c = *counters_;
  auto get = [](const std::atomic<std::uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  };
  s.receive_calls = get(c.receive_calls);
  s.received = get(c.received);
  s.receive_errors = get(c.receive_errors);
  s.deleted = get(c.deleted);
  s.delete_retries = get(c.delete_retries);
  s.nacked = get(c.nacked);
  s.extended = get(c.extended);
  s.lost = get(c.lost);
  s.dead_lettered = get(c.dead_lettered);
  s.stale_settles = get(c.stale_settles);
  s.over_received = get(c.over_received);
  s.handed_back = get(c.handed_back);
  return s;
}

io_result sqs_transport::close() {
  std::lock_guard<std::mutex> once{close_mutex_};
  if (closed_) {
    return io_result::success();
  }
  closed_ = true;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    closing_ = true;
  }
  stop_.store(true, std::memory_order_release);
  wanted_.notify_all();
  readable_.notify_all();
  for (auto& t : receivers_) {
    if (t.joinable()) {
      t.join();
    }
  }
  std::vector<std::string> held;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& b : buffer_) {
      held.push_back(std::move(b.msg.handle.handle));
    }
    buffer_.clear();
  }
  if (!held.empty() && hand_back(held)) {
    counters_->handed_back.fetch_add(held.size(), std::memory_order_relaxed);
  }
  return io_result::success();
}

} // namespace mailroom
