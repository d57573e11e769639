#include "transports/redis/redis_streams_transport.hpp"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "clients/redis/redis_reply.hpp"
#include "core/unix_time.hpp"
#include "stores/redis/attempt_history_codec.hpp"
#include "transports/redis/redis_failure.hpp"
#include "transports/redis/redis_streams_scripts.hpp"

namespace mailroom {

namespace {

// A blocking read must not be cut off by the connection's own timeout.
redis_settings reader_settings(redis_settings s, std::chrono::milliseconds block) {
  s.command_timeout += block;
  return s;
}

// How long the dead-letter script remembers which delivery wrote an entry's
// record, so a write repeated after a lost reply is known as written rather
// than stale: far longer than any retry of one write.
constexpr std::chrono::milliseconds written_marker_ttl = std::chrono::hours{1};

std::uint32_t to_attempt(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_INTEGER || r->integer < 1) {
    return 1;
  }
  return static_cast<std::uint32_t>(std::min<long long>(r->integer, UINT32_MAX));
}

} // namespace

redis_streams_transport::redis_streams_transport(redis_streams_settings settings)
    : settings_(resolve_defaults(std::move(settings))), decoder_(settings_),
      reader_(std::make_unique<redis_connection>(
          reader_settings(settings_.redis, settings_.block))),
      settler_(std::make_unique<redis_connection>(settings_.redis)) {
  poll_script_ = reader_->add_script(redis_streams_scripts::poll);
  nack_script_ = settler_->add_script(redis_streams_scripts::nack);
  dead_letter_script_ = settler_->add_script(redis_streams_scripts::dead_letter);
  release_script_ = settler_->add_script(redis_streams_scripts::release_consumer);
  extend_script_ = settler_->add_script(redis_streams_scripts::extend);
}

redis_streams_transport::~redis_streams_transport() = default;

redis_streams_stats redis_streams_transport::stats() const {
  redis_streams_stats s;
  s.read = counters_.read.load(std::memory_order_relaxed);
  s.taken_over = counters_.taken_over.load(std::memory_order_relaxed);
  s.redelivered = counters_.redelivered.load(std::memory_order_relaxed);
  s.acked = counters_.acked.load(std::memory_order_relaxed);
  s.nacked = counters_.nacked.load(std::memory_order_relaxed);
  s.dead_lettered = counters_.dead_lettered.load(std::memory_order_relaxed);
  s.over_delivered = counters_.over_delivered.load(std::memory_order_relaxed);
  s.malformed = counters_.malformed.load(std::memory_order_relaxed);
  s.stale_settles = counters_.stale_settles.load(std::memory_order_relaxed);
  s.extended = counters_.extended.load(std::memory_order_relaxed);
  return s;
}

io_result redis_streams_transport::ensure_group() {
  std::shared_lock<std::shared_mutex> life{lifecycle_};
  if (closed_) {
    return io_result::fatal("redis streams: transport closed");
  }
  std::lock_guard<std::mutex> lock{poll_mutex_};
  return create_group();
}

io_result redis_streams_transport::create_group() {
  auto r = reader_->command({"XGROUP", "CREATE", settings_.stream, settings_.group,
                             settings_.group_start_id, "MKSTREAM"});
  if (r || has_error_code(r, "BUSYGROUP")) {
    group_ready_ = true;
    return io_result::success();
  }
  return streams_failure(r);
}

io_result redis_streams_transport::poll(std::size_t max, std::chrono::milliseconds wait,
                                        envelope_batch& out) {
  std::shared_lock<std::shared_mutex> life{lifecycle_};
  if (closed_ || max == 0) {
    return io_result::success();
  }
  std::lock_guard<std::mutex> lock{poll_mutex_};
  if (!group_ready_) {
    if (auto r = create_group(); !r) {
      return r;
    }
  }
  auto now = clock::now();
  bool recover = cursor_ != "0-0" || now >= next_recovery_;
  bool retries_due =
      now.time_since_epoch().count() >= next_retry_check_.load(std::memory_order_relaxed);
  if (!recover && !retries_due) {
    return read_new(max, std::min(wait, settings_.block), out);
  }
  auto before = out.size();
  auto r = claim(max, recover, out);
  if (!r && !group_ready_) {
    // The stream or the group was deleted under us: recreate and go on.
    if (auto c = create_group(); !c) {
      return c;
    }
    r = claim(max, recover, out);
  }
  if (!r) {
    return r;
  }
  if (recover && cursor_ == "0-0") {
    next_recovery_ = now + settings_.recovery_interval;
  }
  auto taken = out.size() - before;
  if (taken >= max) {
    return r; // more may be due: look again at the next poll
  }
  // Drained for now. A nack() in between may have pulled the time earlier;
  // only a later time is ours to set.
  auto next = (now + settings_.retry_check_interval).time_since_epoch().count();
  auto seen = next_retry_check_.load(std::memory_order_relaxed);
  while (
      seen <= now.time_since_epoch().count() &&
      !next_retry_check_.compare_exchange_weak(seen, next, std::memory_order_relaxed)) {
  }
  // Block only when the claims found nothing: what they found is ready now.
  auto block =
      taken == 0 ? std::min(wait, settings_.block) : std::chrono::milliseconds{0};
  return read_new(max - taken, block, out);
}

io_result redis_streams_transport::claim(std::size_t room, bool recover,
                                         envelope_batch& out) {
  auto r = reader_->evalsha(
      poll_script_, {settings_.stream, settings_.retry_zset},
      {settings_.group, settings_.consumer, std::to_string(room),
       std::to_string(unix_ms_now()), recover ? "1" : "0",
       std::to_string(settings_.min_idle.count()), cursor_,
       std::to_string(settings_.max_deliveries)});
  if (!r) {
    if (has_error_code(r, "NOGROUP")) {
      group_ready_ = false;
    }
    return streams_failure(r);
  }
  const redisReply* reply = r.replies[0].get();
  if (!is_array_of(reply, 2) || reply->element[1]->type != REDIS_REPLY_ARRAY) {
    return io_result::fatal("redis streams: unexpected reply to the poll script");
  }
  if (recover) {
    cursor_.assign(reply_text(reply->element[0]));
    if (cursor_.empty()) {
      cursor_ = "0-0";
    }
  }
  const redisReply* entries = reply->element[1];
  for (std::size_t i = 0; i < entries->elements; ++i) {
    const redisReply* e = entries->element[i];
    if (!is_array_of(e, 4)) {
      continue;
    }
    auto kind = reply_text(e->element[0]);
    auto msg =
        decoder_.decode(reply_text(e->element[1]), e->element[3], to_attempt(e->element[2]));
    if (kind == "x") {
      // Poison for the engine to dead-letter: a message that crashed its
      // consumers this often would crash the next one too.
      msg.poison = "delivery count " + std::to_string(msg.attempt) + " exceeds " +
                   std::to_string(settings_.max_deliveries);
      counters_.over_delivered.fetch_add(1, std::memory_order_relaxed);
    } else if (!msg.poison.empty()) {
      counters_.malformed.fetch_add(1, std::memory_order_relaxed);
    } else {
      auto& counter = kind == "r" ? counters_.redelivered : counters_.taken_over;
      counter.fetch_add(1, std::memory_order_relaxed);
    }
    out.push_back(std::move(msg));
  }
  return io_result::success();
}

io_result redis_streams_transport::read_new(std::size_t room,
                                            std::chrono::milliseconds block,
                                            envelope_batch& out) {
  redis_command cmd{"XREADGROUP",       "GROUP", settings_.group,
                    settings_.consumer, "COUNT", std::to_string(room)};
  // BLOCK 0 would mean "forever": no wait is no BLOCK at all.
  if (block.count() > 0) {
    cmd.push_back("BLOCK");
    cmd.push_back(std::to_string(block.count()));
  }
  cmd.insert(cmd.end(), {"STREAMS", settings_.stream, ">"});
  auto r = reader_->command(cmd);
  if (!r) {
    if (has_error_code(r, "NOGROUP")) {
      group_ready_ = false;
    }
    return streams_failure(r);
  }
  auto first = out.size();
  auto n = decoder_.append_read_reply(r.replies[0].get(), out);
  counters_.read.fetch_add(n, std::memory_order_relaxed);
  auto malformed = std::count_if(out.begin() + static_cast<std::ptrdiff_t>(first), out.end(),
                                 [](const envelope& m) { return !m.poison.empty(); });
  counters_.malformed.fetch_add(static_cast<std::uint64_t>(malformed),
                                std::memory_order_relaxed);
  return io_result::success();
}

io_result redis_streams_transport::ack(const std::vector<const envelope*>& batch) {
  if (batch.empty()) {
    return io_result::success();
  }
  std::shared_lock<std::shared_mutex> life{lifecycle_};
  if (closed_) {
    return io_result::fatal("redis streams: transport closed");
  }
  // Views into the batch: a 256-entry ack copies no id.
  std::vector<std::string_view> xack{"XACK", settings_.stream, settings_.group};
  std::vector<std::string_view> zrem{"ZREM", settings_.retry_zset};
  xack.reserve(3 + batch.size());
  for (const envelope* m : batch) {
    xack.push_back(m->handle.handle);
    // Only a redelivered entry can have a retry record to clean up.
    if (m->attempt > 1) {
      zrem.push_back(m->handle.handle);
    }
  }
  redis_pipeline commands;
  commands.add(xack);
  if (zrem.size() > 2) {
    commands.add(zrem);
  }
  auto r = settler_->send(commands);
  if (!r) {
    return streams_failure(r);
  }
  if (r.replies[0]->type == REDIS_REPLY_INTEGER) {
    counters_.acked.fetch_add(static_cast<std::uint64_t>(r.replies[0]->integer),
                              std::memory_order_relaxed);
  }
  return io_result::success();
}

io_result redis_streams_transport::nack(const envelope& msg,
                                        std::chrono::milliseconds delay) {
  std::shared_lock<std::shared_mutex> life{lifecycle_};
  if (closed_) {
    return io_result::fatal("redis streams: transport closed");
  }
  auto wait = std::max(delay, std::chrono::milliseconds{0});
  auto due = unix_ms_now() + wait.count();
  auto r = settler_->evalsha(
      nack_script_, {settings_.stream, settings_.retry_zset},
      {settings_.group, msg.handle.handle, settings_.consumer, std::to_string(due),
       std::to_string(msg.attempt)});
  if (!r) {
    return streams_failure(r);
  }
  // Look for it when it is due, not a retry_check_interval later.
  auto at = (clock::now() + wait).time_since_epoch().count();
  auto seen = next_retry_check_.load(std::memory_order_relaxed);
  while (at < seen &&
         !next_retry_check_.compare_exchange_weak(seen, at, std::memory_order_relaxed)) {
  }
  if (r.replies[0]->type != REDIS_REPLY_INTEGER || r.replies[0]->integer != 1) {
    counters_.stale_settles.fetch_add(1, std::memory_order_relaxed);
    return io_result::stale_delivery();
  }
  counters_.nacked.fetch_add(1, std::memory_order_relaxed);
  return io_result::success();
}

io_result redis_streams_transport::dead_letter(const envelope& msg,
                                               const dead_letter_record& record) {
  std::shared_lock<std::shared_mutex> life{lifecycle_};
  if (closed_) {
    return io_result::fatal("redis streams: transport closed");
  }
  return write_dead_letter(msg, record);
}

io_result redis_streams_transport::write_dead_letter(const envelope& msg,
                                                     const dead_letter_record& record) {
  auto at = record.dead_lettered_at_ms != 0 ? record.dead_lettered_at_ms : unix_ms_now();
  std::vector<std::string> args{settings_.group, msg.handle.handle, settings_.consumer,
                                std::to_string(msg.attempt),
                                std::to_string(written_marker_ttl.count())};
  args.reserve(5 + 16 + 2 * msg.headers.size());
  auto field = [&args](std::string name, std::string value) {
    args.push_back(std::move(name));
    args.push_back(std::move(value));
  };
  if (!settings_.payload_field.empty()) {
    field(settings_.payload_field, record.payload);
  }
  field("reason", record.reason);
  field("attempts", std::to_string(record.attempts));
  field("errors", encode_attempt_errors(record.errors));
  field("origin", settings_.stream + "/" + msg.handle.handle);
  field("entry_id", msg.handle.handle);
  field("key", msg.key);
  field("dead_lettered_at_ms", std::to_string(at));
  // The entry's other fields, so a record of a malformed entry (or of one
  // read without a payload field) still holds everything it carried.
  for (const auto& [name, value] : msg.headers) {
    field("header:" + name, value);
  }
  auto r = settler_->evalsha(dead_letter_script_,
                             {settings_.stream, settings_.retry_zset, settings_.dlq_stream,
                              settings_.dlq_stream + ":written:" + msg.handle.handle},
                             args);
  if (!r) {
    return streams_failure(r);
  }
  if (r.replies[0]->type != REDIS_REPLY_STRING) {
    counters_.stale_settles.fetch_add(1, std::memory_order_relaxed);
    return io_result::stale_delivery();
  }
  counters_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
  return io_result::success();
}

std::optional<lease_terms> redis_streams_transport::lease() const {
  auto d = settings_.min_idle;
  return lease_terms{d, std::max(d / 3, std::chrono::milliseconds{1})};
}

io_result redis_streams_transport::extend(const std::vector<const receipt*>& receipts,
                                          clock::time_point, std::vector<std::size_t>& lost) {
  if (receipts.empty()) {
    return io_result::success();
  }
  std::shared_lock<std::shared_mutex> life{lifecycle_};
  if (closed_) {
    return io_result::fatal("redis streams: transport closed");
  }
  std::vector<std::string> args{settings_.group, settings_.consumer};
  args.reserve(2 + receipts.size());
  for (const receipt* r : receipts) {
    args.push_back(r->handle);
  }
  auto r = settler_->evalsha(extend_script_, {settings_.stream}, args);
  if (!r) {
    return streams_failure(r);
  }
  const redisReply* reply = r.replies[0].get();
  std::size_t n_lost = 0;
  if (reply->type == REDIS_REPLY_ARRAY) {
    for (std::size_t i = 0; i < reply->elements; ++i) {
      if (reply->element[i]->type == REDIS_REPLY_INTEGER) {
        lost.push_back(static_cast<std::size_t>(reply->element[i]->integer));
        ++n_lost;
      }
    }
  }
  counters_.extended.fetch_add(receipts.size() - n_lost, std::memory_order_relaxed);
  return io_result::success();
}

std::optional<std::uint64_t> redis_streams_transport::dead_letter_depth() {
  redis_connection once{settings_.redis};
  auto r = once.command({"XLEN", settings_.dlq_stream});
  if (!r || r.replies[0]->type != REDIS_REPLY_INTEGER) {
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(r.replies[0]->integer);
}

io_result redis_streams_transport::close() {
  std::unique_lock<std::shared_mutex> life{lifecycle_};
  if (closed_) {
    return io_result::success();
  }
  closed_ = true;
  if (settings_.delete_consumer_on_close) {
    // Best effort: a consumer left behind is harmless, only untidy.
    auto r = settler_->evalsha(release_script_, {settings_.stream},
                               {settings_.group, settings_.consumer});
    if (!r) {
      spdlog::debug("redis streams {}: consumer {} not deleted: {}", settings_.stream,
                    settings_.consumer, r.status.what);
    }
  }
  reader_.reset();
  settler_.reset();
  return io_result::success();
}

} // namespace mailroom
