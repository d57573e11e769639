#include "stores/redis/redis_claim_store.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "core/unix_time.hpp"
#include "stores/redis/dispatch_record_codec.hpp"

namespace mailroom {

namespace {

// KEYS[1], KEYS[2]: the two indexes; then per batch its value and its
// settled set. ARGV per batch: its id, a count n, then n record keys to add
// to the settled set; n = -1 when every record is settled. A batch is
// deleted (value, settled set, index members) when every record is settled
// or its value is gone; returns how many were deleted. Repeating a call
// changes nothing more (SADD, DEL and ZREM are idempotent).
constexpr const char* settle_lua = R"lua(
local a = 1
local gone = 0
for j = 3, #KEYS, 2 do
  local batch, settled = KEYS[j], KEYS[j + 1]
  local id, n = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  local whole = n < 0
  if not whole then
    for first = a, a + n - 1, 1000 do
      redis.call('SADD', settled, unpack(ARGV, first, math.min(first + 999, a + n - 1)))
    end
    a = a + n
    local len, rest = string.match(redis.call('GETRANGE', batch, 0, 40), '^(%d+):(.*)$')
    local count = len and tonumber(string.sub(rest, 1, tonumber(len)))
    whole = not count or redis.call('SCARD', settled) >= count
  end
  if whole then
    redis.call('DEL', batch, settled)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    gone = gone + 1
  end
end
return gone
)lua";

// KEYS[1], KEYS[2]: the two indexes; then per batch its value, its settled
// set and the record an index member of the earlier per-message format
// named. ARGV[i]: the members. Deletes them all; batch ids are never reused,
// so nothing written since the listing can be hit.
constexpr const char* purge_lua = R"lua(
local n = 0
for i = 1, #ARGV do
  local k = 3 * i
  redis.call('DEL', KEYS[k], KEYS[k + 1], KEYS[k + 2])
  -- A batch settled since the listing is gone from the index already: only
  -- what was still indexed is counted as purged.
  n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return n
)lua";

// KEYS[1]: the dispatch index. ARGV[1]: the scope's key prefix. Sums each
// batch's record count less its settled set. A diagnostic: it reads every
// batch of the scope, and names keys it was not passed (one Redis only).
constexpr const char* pending_lua = R"lua(
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local head = redis.call('GETRANGE', ARGV[1] .. 'batch:' .. id, 0, 40)
  local len, rest = string.match(head, '^(%d+):(.*)$')
  local count = len and tonumber(string.sub(rest, 1, tonumber(len)))
  if count then
    n = n + math.max(0, count - redis.call('SCARD', ARGV[1] .. 'settled:' .. id))
  end
end
return n
)lua";

// How often calls look for batches that lingered past `linger`.
constexpr auto linger_check_period = std::chrono::milliseconds{100};
// Batches a listing reads per round trip, and round trips per listing.
constexpr std::size_t list_page = 16;
constexpr std::size_t max_list_pages = 32;
// A batch's value holds at most this many records and about this many
// bytes (a larger dispatch is written as several batches): a listing reads
// whole values, and Redis refuses a string over proto-max-bulk-len.
constexpr std::size_t max_batch_records = 256;
constexpr std::size_t max_batch_bytes = 4 << 20;

// The bytes `r` takes in a batch's value, near enough to split by.
std::size_t approximate_size(const dispatch_record& r) {
  const auto& m = r.message;
  std::size_t n = 128 + r.filed_under().size() + m.id.size() + m.key.size() + m.topic.size() +
                  m.ordering_key.size() + m.payload.size() + m.handle.handle.size();
  for (const auto& [name, value] : m.headers) {
    n += 16 + name.size() + value.size();
  }
  for (const auto& e : m.attempt_errors) {
    n += 8 + e.size();
  }
  return n;
}

std::string random_instance() {
  std::random_device rd;
  std::uint64_t v = (std::uint64_t{rd()} << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

} // namespace

struct redis_claim_store::open_batch {
  std::string id;
  std::uint32_t live = 0;             ///< Records not settled yet.
  std::vector<std::string> settled;   ///< Settled, not written to Redis yet.
  clock::time_point written;
  bool finished = false;
};

redis_claim_store::redis_claim_store(redis_settings settings, std::string scope)
    : connection_(std::move(settings)), scope_(std::move(scope)),
      by_dispatch_(connection_.key("claims:" + scope_ + ":by_dispatch")),
      by_expiry_(connection_.key("claims:" + scope_ + ":by_expiry")),
      settle_script_(connection_.add_script(settle_lua)),
      purge_script_(connection_.add_script(purge_lua)),
      pending_script_(connection_.add_script(pending_lua)), instance_(random_instance() + "-") {}

redis_claim_store::~redis_claim_store() {
  // What was settled is written, so another process's sweeper does not
  // dispatch it again; what is still open stays for recovery.
  try {
    pay_what_is_owed(true);
  } catch (const std::exception& e) {
    spdlog::warn("redis claim store: writing settled records at shutdown failed: {}",
                 e.what());
  }
}

std::string redis_claim_store::settled_key(std::string_view id) const {
  std::string name{"claims:"};
  name.append(scope_).append(":settled:").append(id);
  return connection_.key(name);
}

bool redis_claim_store::is_ours(std::string_view id) const {
  return id.substr(0, instance_.size()) == instance_;
}

std::string redis_claim_store::batch_key(std::string_view id) const {
  std::string name{"claims:"};
  name.append(scope_).append(":batch:").append(id);
  return connection_.key(name);
}

io_result redis_claim_store::record_dispatch(std::vector<dispatch_record> batch) {
  if (batch.empty()) {
    return io_result::success();
  }
  // A key written twice in one batch keeps its last record.
  std::vector<const dispatch_record*> kept;
  kept.reserve(batch.size());
  {
    std::unordered_set<std::string_view> seen;
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
      if (seen.insert(it->filed_under()).second) {
        kept.push_back(&*it);
      }
    }
    std::reverse(kept.begin(), kept.end());
  }
  // Split into values of bounded size, each a batch of its own; all in one
  // MULTI/EXEC with one ZADD per index.
  struct part {
    std::string id;
    std::size_t first, end;
  };
  std::vector<part> parts;
  for (std::size_t i = 0, bytes = 0; i < kept.size(); ++i) {
    auto size = approximate_size(*kept[i]);
    if (parts.empty() || i - parts.back().first >= max_batch_records ||
        bytes + size > max_batch_bytes) {
      parts.push_back(
          {instance_ + std::to_string(next_batch_.fetch_add(1) + 1), i, i});
      bytes = 0;
    }
    bytes += size;
    parts.back().end = i + 1;
  }
  unix_time time;
  std::vector<redis_command> commands;
  commands.reserve(parts.size() + 4);
  commands.push_back({"MULTI"});
  redis_command by_dispatch{"ZADD", by_dispatch_};
  redis_command by_expiry{"ZADD", by_expiry_};
  for (const auto& p : parts) {
    std::vector<const dispatch_record*> records(kept.begin() + p.first, kept.begin() + p.end);
    auto first_dispatch = records.front()->dispatched;
    auto first_expiry = records.front()->claim_expires;
    for (const auto* r : records) {
      first_dispatch = std::min(first_dispatch, r->dispatched);
      first_expiry = std::min(first_expiry, r->claim_expires);
    }
    commands.push_back({"SET", batch_key(p.id), encode_dispatch_batch(records, time)});
    by_dispatch.push_back(std::to_string(time.to_unix_ms(first_dispatch)));
    by_dispatch.push_back(p.id);
    by_expiry.push_back(std::to_string(time.to_unix_ms(first_expiry)));
    by_expiry.push_back(p.id);
  }
  commands.push_back(std::move(by_dispatch));
  commands.push_back(std::move(by_expiry));
  commands.push_back({"EXEC"});
  auto failed = [&](io_result why) {
    // The transaction may have run with its reply lost: the batches would
    // be ours, listed by nobody (we do not know them) and deleted by
    // nobody. Deleting ids that were never written is harmless.
    std::lock_guard<std::mutex> guard{mutex_};
    for (const auto& p : parts) {
      owed_.push_back(settlement{p.id, true, {}});
    }
    return why;
  };
  auto r = connection_.pipeline(commands);
  if (!r) {
    return failed(r.status);
  }
  const redisReply* exec = r.replies.back().get();
  if (!is_array_of(exec, parts.size() + 2)) {
    return failed(io_result::fatal("redis claim store: the dispatch transaction was aborted"));
  }
  for (std::size_t i = 0; i < exec->elements; ++i) {
    if (is_error_reply(exec->element[i])) {
      return failed(io_result::fatal("redis claim store: " +
                                     std::string{reply_text(exec->element[i])}));
    }
  }
  {
    std::lock_guard<std::mutex> guard{mutex_};
    auto now = clock::now();
    for (const auto& p : parts) {
      auto open = std::make_shared<open_batch>();
      open->id = p.id;
      open->written = now;
      for (std::size_t i = p.first; i < p.end; ++i) {
        const auto& key = kept[i]->filed_under();
        // An earlier record of the key, here or another process's, is replaced.
        if (auto it = live_.find(key); it != live_.end()) {
          settle_locked(key, it->second.token);
        }
        settle_foreign_locked(key);
        live_[key] = live_record{kept[i]->token, open};
        ++open->live;
      }
      open_.push_back(std::move(open));
    }
  }
  pay_what_is_owed(false);
  return io_result::success();
}

fence_result redis_claim_store::settle_locked(std::string_view key, fencing_token token) {
  std::string name{key};
  if (auto it = live_.find(name); it != live_.end() && it->second.token == token) {
    auto batch = std::move(it->second.batch);
    live_.erase(it);
    if (--batch->live == 0) {
      batch->finished = true;
      batch->settled.clear();
      owed_.push_back(settlement{batch->id, true, {}});
    } else {
      batch->settled.push_back(std::move(name));
    }
    return fence_result::applied;
  }
  if (auto f = foreign_.find(name); f != foreign_.end()) {
    auto& listed = f->second;
    auto hit = std::find_if(listed.begin(), listed.end(),
                            [&](const foreign_record& r) { return r.token == token; });
    if (hit != listed.end()) {
      owe_foreign_locked(hit->batch, name);
      listed.erase(hit);
      if (listed.empty()) {
        foreign_.erase(f);
      }
      return fence_result::applied;
    }
  }
  return fence_result::fenced;
}

void redis_claim_store::settle_foreign_locked(const std::string& key) {
  auto f = foreign_.find(key);
  if (f == foreign_.end()) {
    return;
  }
  for (const auto& r : f->second) {
    owe_foreign_locked(r.batch, key);
  }
  foreign_.erase(f);
}

void redis_claim_store::owe_foreign_locked(const std::string& batch, const std::string& key) {
  auto same = std::find_if(owed_.begin(), owed_.end(), [&](const settlement& s) {
    return s.id == batch && !s.whole;
  });
  if (same == owed_.end()) {
    owed_.push_back(settlement{batch, false, {}});
    same = owed_.end() - 1;
  }
  same->keys.push_back(key);
}

void redis_claim_store::remember_foreign_locked(const dispatch_record& r,
                                                const std::string& batch) {
  auto& listed = foreign_[r.key];
  for (const auto& known : listed) {
    if (known.token == r.token && known.batch == batch) {
      return;
    }
  }
  listed.push_back(foreign_record{r.token, batch});
  foreign_order_.push_back(r.key);
  ++foreign_count_;
  // Oldest keys first; the order may name keys settled since (skipped), and
  // is rebuilt when those make up most of it.
  while (foreign_count_ > max_foreign && !foreign_order_.empty()) {
    if (auto it = foreign_.find(foreign_order_.front()); it != foreign_.end()) {
      foreign_count_ -= std::min(foreign_count_, it->second.size());
      foreign_.erase(it);
    }
    foreign_order_.pop_front();
  }
  if (foreign_order_.size() > 2 * max_foreign) {
    foreign_order_.clear();
    foreign_count_ = 0;
    for (const auto& [key, records] : foreign_) {
      foreign_order_.push_back(key);
      foreign_count_ += records.size();
    }
  }
}

void redis_claim_store::collect_lingering_locked(bool all) {
  auto now = clock::now();
  if (!all && now - last_linger_check_ < linger_check_period) {
    return;
  }
  last_linger_check_ = now;
  open_.erase(std::remove_if(open_.begin(), open_.end(),
                             [](const auto& b) { return b->finished; }),
              open_.end());
  for (auto& b : open_) {
    if (!all && now - b->written < linger) {
      break; // written in order: the rest are younger
    }
    if (!b->settled.empty()) {
      owed_.push_back(settlement{b->id, false, std::move(b->settled)});
      b->settled.clear();
    }
  }
}

bool redis_claim_store::pay_what_is_owed(bool all) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    collect_lingering_locked(all);
    if (owed_.empty()) {
      return true;
    }
  }
  return pay_owed();
}

bool redis_claim_store::pay_owed() const {
  std::vector<settlement> work;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    work.swap(owed_);
  }
  if (work.empty()) {
    return true;
  }
  std::vector<std::string> keys{by_dispatch_, by_expiry_};
  std::vector<std::string> args;
  keys.reserve(2 + 2 * work.size());
  for (const auto& s : work) {
    keys.push_back(batch_key(s.id));
    keys.push_back(settled_key(s.id));
    args.push_back(s.id);
    args.push_back(s.whole ? "-1" : std::to_string(s.keys.size()));
    args.insert(args.end(), s.keys.begin(), s.keys.end());
  }
  auto r = connection_.evalsha(settle_script_, keys, args);
  if (r && r.replies[0]->type == REDIS_REPLY_INTEGER) {
    return true;
  }
  if (!r.replies.empty()) {
    spdlog::error("redis claim store: settling records of {} batches failed: {}",
                  work.size(), r ? std::string{"unexpected reply"} : r.status.what);
  }
  // Kept for the next call that reaches Redis.
  std::lock_guard<std::mutex> guard{mutex_};
  owed_.insert(owed_.begin(), std::make_move_iterator(work.begin()),
               std::make_move_iterator(work.end()));
  return false;
}

template <class Wanted, class When>
io_result redis_claim_store::list(const std::string& index, const std::string& max_score,
                                  std::size_t limit, Wanted wanted, When when,
                                  std::vector<dispatch_record>& out) {
  if (limit == 0) {
    return io_result::success();
  }
  pay_what_is_owed(false);
  unix_time time;
  std::vector<std::pair<dispatch_record, std::string>> found; // record, its batch
  std::vector<std::string> unreadable;
  const auto page = std::max(limit, list_page);
  for (std::size_t p = 0; p < max_list_pages && found.size() < limit; ++p) {
    auto range = connection_.command({"ZRANGEBYSCORE", index, "-inf", max_score, "LIMIT",
                                      std::to_string(p * page), std::to_string(page)});
    if (!range) {
      return range.status;
    }
    const redisReply* ids = range.replies[0].get();
    if (ids->type != REDIS_REPLY_ARRAY) {
      return io_result::fatal("redis claim store: unexpected ZRANGEBYSCORE reply");
    }
    if (ids->elements == 0) {
      break;
    }
    std::vector<redis_command> reads;
    reads.reserve(2 * ids->elements);
    for (std::size_t i = 0; i < ids->elements; ++i) {
      std::string id{reply_text(ids->element[i])};
      reads.push_back({"GET", batch_key(id)});
      reads.push_back({"SMEMBERS", settled_key(id)});
    }
    auto values = connection_.pipeline(reads);
    if (!values) {
      return values.status;
    }
    for (std::size_t i = 0; i < ids->elements; ++i) {
      std::string id{reply_text(ids->element[i])};
      const redisReply* value = values.replies[2 * i].get();
      const redisReply* settled = values.replies[2 * i + 1].get();
      std::vector<dispatch_record> records;
      if (value->type != REDIS_REPLY_STRING ||
          !decode_dispatch_batch(reply_text(value), time, records)) {
        unreadable.push_back(std::move(id));
        continue;
      }
      std::unordered_set<std::string_view> gone;
      for (std::size_t k = 0; settled->type == REDIS_REPLY_ARRAY && k < settled->elements; ++k) {
        gone.insert(reply_text(settled->element[k]));
      }
      if (found.size() >= limit) {
        break; // later batches start no earlier (the index is by each batch's first)
      }
      const bool ours = is_ours(id);
      std::lock_guard<std::mutex> guard{mutex_};
      for (auto& rec : records) {
        if (gone.count(rec.key) != 0 || !wanted(rec)) {
          continue;
        }
        if (ours) {
          // Our own batch: only what we have not settled or replaced.
          auto it = live_.find(rec.key);
          if (it == live_.end() || it->second.token != rec.token ||
              it->second.batch->id != id) {
            continue;
          }
        }
        found.emplace_back(std::move(rec), id);
      }
    }
    if (ids->elements < page) {
      break;
    }
  }
  if (!unreadable.empty()) {
    purge(unreadable);
  }
  std::stable_sort(found.begin(), found.end(),
                   [&](const auto& a, const auto& b) { return when(a.first) < when(b.first); });
  if (found.size() > limit) {
    found.resize(limit);
  }
  std::lock_guard<std::mutex> guard{mutex_};
  out.reserve(out.size() + found.size());
  for (auto& [rec, id] : found) {
    if (!is_ours(id)) {
      // Remembered so a mark of it (or its key written again) settles it.
      remember_foreign_locked(rec, id);
    }
    out.push_back(std::move(rec));
  }
  return io_result::success();
}

void redis_claim_store::purge(const std::vector<std::string>& ids) {
  std::vector<std::string> keys{by_dispatch_, by_expiry_};
  for (const auto& id : ids) {
    keys.push_back(batch_key(id));
    keys.push_back(settled_key(id));
    keys.push_back(connection_.key("claim:" + scope_ + ":" + id)); // the earlier format
  }
  auto r = connection_.evalsha(purge_script_, keys, ids);
  if (r && r.replies[0]->type == REDIS_REPLY_INTEGER && r.replies[0]->integer > 0) {
    purged_.fetch_add(static_cast<std::uint64_t>(r.replies[0]->integer),
                      std::memory_order_relaxed);
    spdlog::warn("redis claim store: removed {} unreadable dispatch records (missing, of an "
                 "earlier format, or malformed) and their index entries",
                 r.replies[0]->integer);
  }
}

io_result redis_claim_store::list_stale(clock::time_point cutoff, std::size_t limit,
                                        std::vector<dispatch_record>& out) {
  // Exclusive bound: "dispatched before cutoff" in whole milliseconds; a
  // batch's score is its earliest record, each record is checked itself.
  const auto bound = unix_time{}.to_unix_ms(cutoff);
  unix_time time;
  return list(
      by_dispatch_, "(" + std::to_string(bound), limit,
      [&](const dispatch_record& r) { return time.to_unix_ms(r.dispatched) < bound; },
      [](const dispatch_record& r) { return r.dispatched; }, out);
}

io_result redis_claim_store::list_reclaimable(clock::time_point now, std::size_t limit,
                                              std::vector<dispatch_record>& out) {
  // Exclusive too: stored expiries are rounded down, and a claim must not be
  // reclaimed in the millisecond before it really expires.
  const auto bound = unix_time{}.to_unix_ms(now);
  unix_time time;
  return list(
      by_expiry_, "(" + std::to_string(bound), limit,
      [&](const dispatch_record& r) { return time.to_unix_ms(r.claim_expires) < bound; },
      [](const dispatch_record& r) { return r.claim_expires; }, out);
}

fence_result redis_claim_store::mark_terminal(const std::string& key, fencing_token token) {
  fence_result result;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    result = settle_locked(key, token);
  }
  // Redis could not be told what is owed (this mark's or an earlier one's):
  // the mark is kept and written later, but the store is not answering.
  return pay_what_is_owed(false) ? result : fence_result::unavailable;
}

void redis_claim_store::mark_terminal_all(const std::vector<terminal_mark>& batch) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (const auto& mark : batch) {
      settle_locked(mark.key, mark.token);
    }
  }
  pay_what_is_owed(false);
}

std::size_t redis_claim_store::pending() const {
  // Everything settled here is written first, so the count is Redis's own.
  if (!const_cast<redis_claim_store*>(this)->pay_what_is_owed(true)) {
    return last_pending_.load();
  }
  auto r = connection_.evalsha(pending_script_, {by_dispatch_},
                               {connection_.key("claims:" + scope_ + ":")});
  if (r && r.replies[0]->type == REDIS_REPLY_INTEGER) {
    last_pending_.store(static_cast<std::size_t>(r.replies[0]->integer));
  }
  return last_pending_.load();
}

} // namespace mailroom
