#include "transports/sqs/sqs_dlq.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "transports/sqs/sqs_client_settings.hpp"
#include "transports/sqs/sqs_dlq_format.hpp"

namespace mailroom {

namespace {

namespace format = sqs_dlq_format;
using clock = std::chrono::steady_clock;

constexpr std::size_t max_batch = 10;      // SQS's limit per call
constexpr std::size_t max_attributes = 10; // SQS's limit per message
constexpr int tries = 3;                   // of a call failing transiently

bool is_fifo(const std::string& queue_url) {
  return queue_url.size() > 5 && queue_url.compare(queue_url.size() - 5, 5, ".fifo") == 0;
}

// The string value of attribute `name`; nullptr when `m` has none.
const std::string* attribute(const sqs_message& m, const char* name) {
  auto it = m.message_attributes.find(name);
  return it == m.message_attributes.end() ? nullptr : &it->second.string_value;
}

std::uint32_t number_or_zero(const std::string* text) {
  try {
    return text == nullptr ? 0 : static_cast<std::uint32_t>(std::stoul(*text));
  } catch (const std::exception&) {
    return 0;
  }
}

} // namespace

struct sqs_dlq::state {
  /// A record received and kept invisible until the command is done with it.
  struct held {
    dlq_record record;
    std::string receipt;    ///< Its latest receipt handle.
    std::string source_url; ///< Where a replay writes it; "": not known.
    std::string group_id;   ///< Its message group (FIFO sources).
  };

  sqs_transport_settings settings;
  key_eraser forget;
  std::unique_ptr<sqs_api> api;
  std::string source_url; ///< The configured queue.
  std::string dlq_url;
  bool redrive = false; ///< The DLQ is the source's redrive target.
  std::map<std::string, held> holding; ///< By record id.
  std::vector<std::string> order;      ///< Ids in the order received.
  bool drained = false;                ///< A receive came back empty.
  /// Records this command replayed: one that failed again and was parked
  /// anew while the command runs is not visited (replayed) a second time.
  std::set<std::string> replayed_here;
  std::uint64_t receives = 0; ///< Numbers the receive attempts of a FIFO DLQ.
  clock::time_point hold_renewed{};

  std::runtime_error failed(const std::string& what, const io_result& why) const {
    return std::runtime_error("sqs dlq (" + api->endpoint() + "): " + what + ": " + why.what);
  }

  // Calls `call` until it succeeds, fails other than transiently, or has
  // been tried `tries` times.
  template <class Call> auto patiently(Call call) {
    for (int i = 1;; ++i) {
      auto r = call();
      if (r || r.status.failure != failure_class::transient || i == tries) {
        return r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{200 * i});
    }
  }

  std::chrono::seconds hold() const { return std::chrono::seconds{settings.visibility_timeout_s}; }

  void resolve_queues();
  dlq_record record_of(const sqs_message& m, held& h) const;
  std::size_t receive_more();
  void keep_holding();
  void set_visibility(const std::vector<std::string>& ids, int seconds);
  void release_all();
};

void sqs_dlq::state::resolve_queues() {
  source_url = settings.queue_url;
  if (source_url.empty()) {
    auto r = patiently([&] {
      return api->get_queue_url(settings.queue_name, settings.queue_owner_account_id);
    });
    if (!r) {
      throw failed("SQS queue \"" + settings.queue_name + "\"", r.status);
    }
    source_url = r.value;
  }
  dlq_url = settings.dlq_queue_url;
  if (dlq_url.empty()) {
    auto attrs = patiently([&] { return api->get_queue_attributes(source_url); });
    if (!attrs) {
      throw failed("SQS queue " + source_url, attrs.status);
    }
    if (!attrs.value.redrive_policy) {
      throw std::runtime_error("sqs dlq (" + api->endpoint() + "): SQS queue " + source_url +
                               " has no redrive policy and transport.sqs.dlq_queue_url is "
                               "empty: there is no dead-letter queue to read");
    }
    const auto& arn = attrs.value.redrive_policy->dead_letter_target_arn;
    auto url = patiently([&] { return api->get_queue_url_of_arn(arn); });
    if (!url) {
      throw failed("the redrive target " + arn + " of " + source_url, url.status);
    }
    dlq_url = url.value;
    redrive = true;
  }
  auto dlq = patiently([&] { return api->get_queue_attributes(dlq_url); });
  if (!dlq) {
    throw failed("dead-letter queue " + dlq_url, dlq.status);
  }
  if (dlq.value.redrive_policy) {
    // Each listing is a receive: enough of them move a record on.
    spdlog::warn("sqs dlq: {} has a redrive policy of its own (after {} receives to {}): "
                 "every mailroom dlq command counts as a receive of what it reads",
                 dlq_url, dlq.value.redrive_policy->max_receive_count,
                 dlq.value.redrive_policy->dead_letter_target_arn);
  }
}

// The record as the command shows it; where it goes back to in `h`.
dlq_record sqs_dlq::state::record_of(const sqs_message& m, held& h) const {
  dlq_record r;
  r.id = m.message_id;
  h.receipt = m.receipt_handle;
  const bool ours = attribute(m, format::reason) != nullptr;
  if (ours) {
    r.reason = *attribute(m, format::reason);
    r.attempts = number_or_zero(attribute(m, format::attempts));
    auto at = attribute(m, format::dead_lettered_at_ms);
    try {
      r.dead_lettered_at_ms = at == nullptr ? 0 : std::stoll(*at);
    } catch (const std::exception&) {
      r.dead_lettered_at_ms = 0;
    }
    if (auto source = attribute(m, format::source_queue)) {
      h.source_url = *source;
    }
    auto source_id = attribute(m, format::source_message_id);
    r.origin = queue_name_of(h.source_url) + "/" + (source_id ? *source_id : std::string{"?"});
    if (auto errors = attribute(m, format::errors)) {
      auto j = nlohmann::json::parse(*errors, nullptr, false);
      if (j.is_array()) {
        for (const auto& e : j) {
          r.errors.push_back(e.is_string() ? e.get<std::string>() : e.dump());
        }
      }
    }
    if (auto packed = attribute(m, format::original)) {
      if (auto original = format::unpack(*packed)) {
        r.headers = std::move(original->attributes);
        h.group_id = std::move(original->group_id);
      }
    }
    if (auto key = attribute(m, format::key)) {
      r.key = *key;
    }
  } else {
    // Moved here by the queue's redrive policy, as it was received.
    r.reason = redrive ? "moved by the redrive policy of " + queue_name_of(source_url)
                       : "no mailroom.reason: not parked by mailroom";
    if (redrive) {
      h.source_url = source_url;
    }
    r.dead_lettered_at_ms = m.sent_timestamp_ms;
    r.origin = (redrive ? queue_name_of(source_url) : std::string{"?"}) + "/" + m.message_id;
    for (const auto& [name, value] : m.message_attributes) {
      bool binary = value.data_type.rfind("Binary", 0) == 0;
      r.headers.emplace_back(name, binary ? value.binary_value : value.string_value);
    }
    h.group_id = m.message_group_id;
  }
  if (r.key.empty()) {
    // As the transport keys it: the key attribute, else the message id.
    for (const auto& [name, value] : r.headers) {
      if (!settings.key_attribute.empty() && name == settings.key_attribute) {
        r.key = value;
      }
    }
    r.key = format::replay_key(r.headers, r.key).value_or(r.key.empty() ? m.message_id : r.key);
  }
  for (const auto& [name, value] : r.headers) {
    if (name == format::replayed) {
      r.replays = number_or_zero(&value);
    }
  }
  r.payload = m.body;
  auto body = attribute(m, format::body);
  if (body != nullptr && *body == "empty") {
    r.payload.clear();
  } else if (body != nullptr && *body == "base64") {
    r.payload = format::base64_decode(m.body).value_or(m.body);
  }
  return r;
}

// Receives the next records into `holding`; returns how many were new.
std::size_t sqs_dlq::state::receive_more() {
  keep_holding();
  sqs_receive_request rq;
  rq.queue_url = dlq_url;
  rq.max_messages = static_cast<int>(max_batch);
  rq.wait_time_s = 1; // a long poll asks every server: an empty answer means empty
  rq.visibility_timeout_s = static_cast<int>(settings.visibility_timeout_s);
  if (is_fifo(dlq_url)) {
    // A retry after a lost reply gets the same records, not an empty answer.
    rq.receive_request_attempt_id =
        "mailroom-dlq-" + std::to_string(::getpid()) + "-" + std::to_string(++receives);
  }
  auto got = patiently([&] { return api->receive_message(rq); });
  if (!got) {
    throw failed("receiving from " + dlq_url, got.status);
  }
  if (got.value.empty()) {
    drained = true;
    return 0;
  }
  if (holding.empty()) {
    hold_renewed = clock::now();
  }
  std::size_t fresh = 0;
  for (const auto& m : got.value) {
    auto it = holding.find(m.message_id);
    if (it != holding.end()) {
      it->second.receipt = m.receipt_handle; // the hold lapsed: this one is valid now
      continue;
    }
    held h;
    h.record = record_of(m, h);
    bool again = false;
    for (const auto& [name, value] : h.record.headers) {
      again = again || (name == format::replay_of && replayed_here.count(value) != 0);
    }
    if (!again) {
      order.push_back(m.message_id); // else held, unvisited, given back at the end
      ++fresh;
    }
    holding.emplace(m.message_id, std::move(h));
  }
  return fresh;
}

// Extends the hold on everything held once half of it has passed.
void sqs_dlq::state::keep_holding() {
  if (holding.empty() || clock::now() - hold_renewed < hold() / 2) {
    return;
  }
  std::vector<std::string> ids;
  for (const auto& entry : holding) {
    ids.push_back(entry.first);
  }
  set_visibility(ids, static_cast<int>(settings.visibility_timeout_s));
  hold_renewed = clock::now();
}

void sqs_dlq::state::set_visibility(const std::vector<std::string>& ids, int seconds) {
  for (std::size_t i = 0; i < ids.size(); i += max_batch) {
    std::vector<sqs_visibility_entry> entries;
    for (std::size_t j = i; j < std::min(ids.size(), i + max_batch); ++j) {
      entries.push_back({std::to_string(j - i), holding.at(ids[j]).receipt, seconds});
    }
    auto r = patiently([&] { return api->change_message_visibility_batch(dlq_url, entries); });
    if (!r) {
      throw failed("changing the visibility of records in " + dlq_url, r.status);
    }
    if (auto refused = r.value.failed(); refused > 0) {
      // Received by another reader meanwhile: it may visit them too.
      spdlog::warn("sqs dlq: {} of {} records in {} could not be {} (taken by another reader?)",
                   refused, entries.size(), dlq_url, seconds == 0 ? "given back" : "held longer");
    }
  }
}

// Makes everything held visible again, for the next command.
void sqs_dlq::state::release_all() {
  std::vector<std::string> ids;
  for (const auto& entry : holding) {
    ids.push_back(entry.first);
  }
  drained = false;
  order.clear();
  try {
    set_visibility(ids, 0);
  } catch (...) {
    holding.clear(); // the hold ends by itself
    throw;
  }
  holding.clear();
}

sqs_dlq::sqs_dlq(sqs_transport_settings settings, key_eraser forget)
    : s_(std::make_unique<state>()) {
  s_->settings = std::move(settings);
  s_->forget = std::move(forget);
  auto region = effective_region(s_->settings);
  if (region.empty()) {
    throw std::runtime_error("sqs dlq: no region (set transport.sqs.region or AWS_REGION)");
  }
  s_->api = std::make_unique<sqs_api>(client_settings_of(s_->settings, region),
                                      credentials_of(s_->settings));
  s_->resolve_queues();
}

sqs_dlq::~sqs_dlq() {
  try {
    s_->release_all();
  } catch (const std::exception& e) {
    spdlog::warn("sqs dlq: {} (the records come back when their hold of {} s ends)", e.what(),
                 s_->settings.visibility_timeout_s);
  }
}

std::string sqs_dlq::describe() const {
  return "SQS queue " + s_->dlq_url + (s_->redrive ? " (the redrive target of " +
                                                         queue_name_of(s_->source_url) + ")"
                                                   : std::string{});
}

void sqs_dlq::for_each(const std::function<bool(const dlq_record&)>& visit) {
  for (std::size_t next = 0;;) {
    if (next == s_->order.size()) {
      // Only an empty receive ends it: one that brought nothing new (records
      // whose hold lapsed) does not.
      if (s_->drained) {
        break;
      }
      s_->receive_more();
      continue;
    }
    s_->keep_holding(); // slow visits (a replay, a blocked stdout) keep the hold
    auto it = s_->holding.find(s_->order[next++]);
    if (it == s_->holding.end()) {
      continue; // replayed or removed already
    }
    auto record = it->second.record; // `visit` may replay it: its entry goes
    if (!visit(record)) {
      break;
    }
  }
  s_->release_all();
}

bool sqs_dlq::find(const std::string& id, dlq_record& out) {
  for (;;) {
    auto it = s_->holding.find(id);
    if (it != s_->holding.end()) {
      out = it->second.record; // held until the command ends: it may replay it
      return true;
    }
    if (s_->drained) {
      return false;
    }
    s_->receive_more();
  }
}

dlq_change sqs_dlq::replay(const dlq_record& r) {
  auto it = s_->holding.find(r.id);
  if (it == s_->holding.end()) {
    return dlq_change::missing;
  }
  s_->keep_holding();
  auto h = it->second; // r may be this entry's record
  if (h.source_url.empty()) {
    throw std::runtime_error("record " + h.record.id + " does not say where it came from (no " +
                             std::string{format::source_queue} + "): replay it by hand, or "
                             "purge it");
  }
  if (s_->forget) {
    s_->forget(queue_name_of(h.source_url), h.record.key);
  }
  const auto count = std::to_string(h.record.replays + 1);
  sqs_send_request send;
  send.queue_url = h.source_url;
  send.body = h.record.payload.empty() ? std::string{" "} : h.record.payload;
  for (const auto& [name, value] : h.record.headers) {
    if (name != format::replayed && name != format::replay_of && !value.empty()) {
      send.attributes[name] = {"String", value, {}};
    }
  }
  send.attributes[format::replayed] = {"Number", count, {}};
  send.attributes[format::replay_of] = {"String", h.record.id, {}};
  if (send.attributes.size() > max_attributes) {
    throw std::runtime_error("record " + h.record.id + " has " +
                             std::to_string(send.attributes.size() - 2) +
                             " attributes: with the replay's two that exceeds SQS's " +
                             std::to_string(max_attributes));
  }
  if (is_fifo(h.source_url)) {
    send.group_id = h.group_id.empty() ? std::string{"mailroom"} : h.group_id;
    // A second copy of this replay within 5 minutes is dropped by the queue.
    send.deduplication_id = "replay-" + h.record.id + "-" + count;
  }
  auto sent = s_->patiently([&] { return s_->api->send_message(send); });
  if (!sent) {
    throw s_->failed("replaying record " + h.record.id + " to " + h.source_url, sent.status);
  }
  s_->holding.erase(r.id);
  s_->replayed_here.insert(h.record.id);
  auto deleted = s_->patiently(
      [&] { return s_->api->delete_message_batch(s_->dlq_url, {{"0", h.receipt}}); });
  if (!deleted || deleted.value.entries.size() != 1 || !deleted.value.entries[0].ok) {
    // It comes back when the hold ends; a rerun sends a copy with the same key.
    throw std::runtime_error(
        "sqs dlq (" + s_->api->endpoint() + "): record " + h.record.id + " was replayed to " +
        h.source_url + " but its delete failed (" +
        (!deleted ? deleted.status.what
                  : deleted.value.entries.empty() ? std::string{"no answer"}
                                                  : deleted.value.entries[0].code) +
        "): it comes back to the DLQ, and a replay of it again is handled once with dedupe on");
  }
  return dlq_change::done;
}

dlq_change sqs_dlq::remove(const dlq_record& r) {
  auto it = s_->holding.find(r.id);
  if (it == s_->holding.end()) {
    return dlq_change::missing;
  }
  s_->keep_holding();
  auto receipt = it->second.receipt;
  auto deleted =
      s_->patiently([&] { return s_->api->delete_message_batch(s_->dlq_url, {{"0", receipt}}); });
  if (!deleted) {
    throw s_->failed("deleting record " + r.id + " from " + s_->dlq_url, deleted.status);
  }
  s_->holding.erase(r.id);
  if (deleted.value.entries.size() != 1 || !deleted.value.entries[0].ok) {
    return dlq_change::missing; // its receipt is no longer the latest: gone or taken
  }
  return dlq_change::done;
}

} // namespace mailroom
