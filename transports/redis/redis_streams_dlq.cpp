#include "transports/redis/redis_streams_dlq.hpp"

#include <cstdlib>
#include <stdexcept>

#include "clients/redis/redis_reply.hpp"
#include "stores/redis/attempt_history_codec.hpp"

namespace mailroom {

namespace {

constexpr const char* header_prefix = "header:";
constexpr const char* replayed_header = "mailroom.replayed";
constexpr const char* replay_of_header = "mailroom.replay_of";

// KEYS: 1 dead-letter stream, 2 source stream, 3 idempotency key.
// ARGV: 1 record id, 2.. the fields of the entry written back.
// Returns the new entry's id, or false when the record is gone (replayed
// or purged by someone else). One script: never both places, never none.
const char* const replay_lua = R"lua(
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  return false
end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('DEL', KEYS[3])
redis.call('XDEL', KEYS[1], ARGV[1])
return id
)lua";

std::uint32_t to_count(const std::string& text) {
  try {
    return static_cast<std::uint32_t>(std::stoul(text));
  } catch (const std::exception&) {
    return 0;
  }
}

dlq_record record_of(const redisReply* entry, const std::string& payload_field) {
  dlq_record r;
  r.id = std::string{reply_text(entry->element[0])};
  r.has_payload = false;
  const auto* fields = entry->element[1];
  for (std::size_t i = 0; i + 1 < fields->elements; i += 2) {
    std::string name{reply_text(fields->element[i])};
    std::string value{reply_text(fields->element[i + 1])};
    if (!payload_field.empty() && name == payload_field) {
      r.payload = std::move(value);
      r.has_payload = true;
    } else if (name == "reason") {
      r.reason = std::move(value);
    } else if (name == "attempts") {
      r.attempts = to_count(value);
    } else if (name == "errors") {
      r.errors = decode_attempt_errors(value);
    } else if (name == "origin") {
      r.origin = std::move(value);
    } else if (name == "key") {
      r.key = std::move(value);
    } else if (name == "dead_lettered_at_ms") {
      r.dead_lettered_at_ms = std::strtoll(value.c_str(), nullptr, 10);
    } else if (name.rfind(header_prefix, 0) == 0) {
      name.erase(0, std::char_traits<char>::length(header_prefix));
      if (name == replayed_header) {
        r.replays = to_count(value);
      } else if (name != replay_of_header) {
        r.headers.emplace_back(std::move(name), std::move(value));
      }
    }
  }
  return r;
}

} // namespace

redis_streams_dlq::redis_streams_dlq(redis_streams_settings settings, dedupe_scope scope)
    : settings_(resolve_defaults(std::move(settings))), scope_(scope),
      connection_(settings_.redis), replay_script_(connection_.add_script(replay_lua)) {}

std::string redis_streams_dlq::describe() const {
  return "stream \"" + settings_.dlq_stream + "\" (of \"" + settings_.stream + "\") at " +
         settings_.redis.host + ":" + std::to_string(settings_.redis.port);
}

redis_replies redis_streams_dlq::checked(redis_replies r, const char* what) const {
  if (!r) {
    throw std::runtime_error(std::string{what} + " on " + describe() + " failed: " +
                             r.status.what);
  }
  return r;
}

void redis_streams_dlq::for_each(const std::function<bool(const dlq_record&)>& visit) {
  constexpr int page = 500;
  // Up to the last record there now: what a running consumer parks while a
  // replay goes on (the same message failing again) is not visited.
  auto last = checked(connection_.command({"XREVRANGE", settings_.dlq_stream, "+", "-",
                                           "COUNT", "1"}),
                      "XREVRANGE");
  if (last.replies[0]->type != REDIS_REPLY_ARRAY || last.replies[0]->elements == 0) {
    return;
  }
  const std::string end{reply_text(last.replies[0]->element[0]->element[0])};
  std::string from = "-";
  for (;;) {
    auto r = checked(connection_.command({"XRANGE", settings_.dlq_stream, from, end, "COUNT",
                                          std::to_string(page)}),
                     "XRANGE");
    const auto* entries = r.replies[0].get();
    if (entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) {
      return;
    }
    for (std::size_t i = 0; i < entries->elements; ++i) {
      if (!visit(record_of(entries->element[i], settings_.payload_field))) {
        return;
      }
    }
    if (entries->elements < static_cast<std::size_t>(page)) {
      return;
    }
    // Exclusive start after the last id of this page.
    from = "(" + std::string{reply_text(entries->element[entries->elements - 1]->element[0])};
  }
}

bool redis_streams_dlq::find(const std::string& id, dlq_record& out) {
  auto r = checked(connection_.command({"XRANGE", settings_.dlq_stream, id, id}), "XRANGE");
  const auto* entries = r.replies[0].get();
  if (entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) {
    return false;
  }
  out = record_of(entries->element[0], settings_.payload_field);
  return true;
}

dlq_change redis_streams_dlq::replay(const dlq_record& r) {
  std::vector<std::string> args{r.id};
  if (!settings_.payload_field.empty() && r.has_payload) {
    args.push_back(settings_.payload_field);
    args.push_back(r.payload);
  }
  for (const auto& [name, value] : r.headers) {
    args.push_back(name);
    args.push_back(value);
  }
  args.push_back(replayed_header);
  args.push_back(std::to_string(r.replays + 1));
  // The DLQ's id of the record: where the replayed entry came from.
  args.push_back(replay_of_header);
  args.push_back(r.id);
  envelope as_delivered;
  as_delivered.topic = settings_.topic;
  as_delivered.key = r.key;
  auto idem = connection_.key("idem:") + dedupe_key(as_delivered, scope_);
  auto reply = checked(connection_.evalsha(replay_script_,
                                           {settings_.dlq_stream, settings_.stream, idem}, args),
                       "replay");
  return reply.replies[0]->type == REDIS_REPLY_STRING ? dlq_change::done : dlq_change::missing;
}

dlq_change redis_streams_dlq::remove(const dlq_record& r) {
  auto reply = checked(connection_.command({"XDEL", settings_.dlq_stream, r.id}), "XDEL");
  return reply.replies[0]->integer > 0 ? dlq_change::done : dlq_change::missing;
}

} // namespace mailroom
