#include "actors/handler_lane.hpp"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "actors/async_calls.hpp"
#include "actors/delivery_count.hpp"
#include "actors/retry_order.hpp"
#include "actors/engine_context.hpp"

namespace mailroom {

static std::int64_t micros_between(clock::time_point from, clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             clock::now().time_since_epoch())
      .count();
}

namespace {

std::string threw(const std::exception* e) {
  return e != nullptr ? std::string{"handler threw: "} + e->what()
                      : std::string{"handler threw a non-standard exception"};
}

// Exceptions become outcomes here, so nothing a handler does can unwind into
// the engine.
outcome call_blocking(engine_context& ctx, const handler_fn& fn, const envelope& msg,
                      handler_context& hctx) {
  try {
    return fn(msg, hctx);
  } catch (const std::exception& e) {
    ctx.metrics.handler_error(msg.topic);
    return outcome::retry(threw(&e));
  } catch (...) {
    ctx.metrics.handler_error(msg.topic);
    return outcome::retry(threw(nullptr));
  }
}

void call_async(engine_context& ctx, const async_handler_fn& fn,
                const std::shared_ptr<async_call>& call, handler_context& hctx) {
  // Copied first: once the handler hands its completion to another thread,
  // a completion there moves the message out of the call.
  const std::string topic = call->message().topic;
  try {
    fn(call->message(), hctx, completion{call});
  } catch (const std::exception& e) {
    ctx.metrics.handler_error(topic);
    call->complete(outcome::retry(threw(&e)));
  } catch (...) {
    ctx.metrics.handler_error(topic);
    call->complete(outcome::retry(threw(nullptr)));
  }
}

} // namespace

handler_lane::handler_lane(std::shared_ptr<engine_context> ctx, std::uint32_t index)
    : ctx_(std::move(ctx)), index_(index) {}

handler_lane::~handler_lane() {
  if (thread_.joinable()) {
    thread_.detach();
  }
}

void handler_lane::start() {
  // The thread holds its own reference: an abandoned lane outlives its worker.
  thread_ = std::thread([self = shared_from_this()] { self->run(); });
}

std::shared_ptr<lane_unit> handler_lane::current() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return unit_;
}

void handler_lane::abandon() {
  abandoned_.store(true, std::memory_order_release);
  stop_.store(true, std::memory_order_release);
}

void handler_lane::shutdown() {
  stop_.store(true, std::memory_order_release);
  ctx_->queue.wake_all();
  if (!thread_.joinable() || thread_.get_id() == std::this_thread::get_id()) {
    return;
  }
  if (busy() || abandoned_.load(std::memory_order_acquire)) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

void handler_lane::run() {
  auto& queue = ctx_->queue;
  for (;;) {
    work_batch items;
    if (!queue.take(queue.unit_size(), items,
                    [this] { return stop_.load(std::memory_order_acquire); })) {
      break;
    }
    gather_batch(items);
    if (stop_.load(std::memory_order_acquire)) {
      // Stopped while gathering: nothing of it started, so it goes back
      // unsettled (the transport delivers it again).
      queue.put_back(std::move(items));
      break;
    }
    ctx_->metrics.running.fetch_add(static_cast<std::int64_t>(items.size()),
                                    std::memory_order_relaxed);
    auto unit = std::make_shared<lane_unit>();
    unit->items = std::move(items);
    {
      std::lock_guard<std::mutex> guard{mutex_};
      unit_ = unit;
      busy_.store(true, std::memory_order_release);
    }
    if (!run_unit(*unit) || abandoned_.load(std::memory_order_acquire)) {
      break;
    }
    std::lock_guard<std::mutex> guard{mutex_};
    unit_.reset();
    busy_.store(false, std::memory_order_release);
  }
  exited_.store(true, std::memory_order_release);
}

void handler_lane::trim_to_budget(lane_unit& unit) {
  // The queue sized the unit by the slowest handler it knows of; a topic this
  // lane has not timed yet counts as a whole budget, so its first message
  // runs alone and a slow new handler does not hold a unit behind it.
  auto& items = unit.items;
  const auto budget = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          work_queue::unit_budget())
                          .count();
  std::int64_t cost = 0;
  std::int64_t per_item = 0;
  const std::string* topic = nullptr;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (topic == nullptr || items[i].msg.topic != *topic) {
      topic = &items[i].msg.topic;
      per_item = latency_.estimate(*topic);
      per_item = per_item < 0 ? budget : std::max<std::int64_t>(per_item, 1);
      // A batch handler's time is per call, not per item: its items are
      // never split across units by this estimate.
      if (const auto* entry = ctx_->handlers.find(*topic); entry != nullptr && entry->batch) {
        per_item = 0;
      }
    }
    cost += per_item;
    if (cost > budget && i > 0) {
      give_back_rest(unit, i);
      return;
    }
  }
}

bool handler_lane::run_unit(lane_unit& unit) {
  trim_to_budget(unit);
  count_deliveries(*ctx_, unit.items);
  retried_keys_.clear();
  const bool keep_order = keeps_retry_order(*ctx_);
  auto& items = unit.items;
  const auto unit_started = clock::now();
  // Latency is measured per run of one topic, so a fast handler's unit of
  // 256 costs two clock reads, not 512.
  auto run_started = unit_started;
  std::string run_topic = items.empty() ? std::string{} : items.front().msg.topic;
  std::size_t run_handled = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto& item = items[i];
    if (!item.preset && !item.requeue) {
      if (ctx_->queue.handing_back()) {
        item.requeue = std::chrono::milliseconds{0}; // drain deadline: not run
        item.drained = true;
      } else if (ctx_->partitions.revoked(item)) {
        item.revoked = true; // its partition is another consumer's now: not run
      } else if (const auto* entry = ctx_->handlers.find(item.msg.topic);
                 entry != nullptr && entry->batch) {
        // One call decides items i..end-1; the checks below run after it.
        std::size_t end = i + 1;
        if (!handle_batch(unit, i, *entry, end)) {
          return false;
        }
        ++run_handled;
        i = end - 1;
      } else {
        if (!handle(unit, i, entry)) {
          return false;
        }
        ++run_handled;
        if (keep_order && item.preset && item.preset->what == outcome::kind::retry) {
          auto key = ctx_->queue.key_of(item.msg);
          mark_behind_retry(*ctx_, items, i + 1, key);
          if (std::find(retried_keys_.begin(), retried_keys_.end(), key) ==
              retried_keys_.end()) {
            retried_keys_.push_back(std::move(key));
          }
        }
      }
    }
    bool last = i + 1 == items.size();
    bool topic_changes = !last && items[i + 1].msg.topic != run_topic;
    // A handler slower than its estimate must not hold the rest of the unit:
    // past twice the unit's budget the rest goes back to the queue.
    bool check_time = topic_changes || last || items.size() <= 16 || i % 16 == 15;
    if (!check_time) {
      continue;
    }
    auto now = clock::now();
    if (topic_changes || last) {
      latency_.record(run_topic, now - run_started, run_handled, now);
      run_started = now;
      run_handled = 0;
      if (!last) {
        run_topic = items[i + 1].msg.topic;
      }
    }
    if (!last && now - unit_started > 2 * work_queue::unit_budget()) {
      latency_.record(run_topic, now - run_started, run_handled, now);
      give_back_rest(unit, i + 1);
      break;
    }
  }
  unit.progress.store(lane_unit::word(items.size(), lane_unit::settling),
                      std::memory_order_release);
  ctx_->queue.publish_estimate(index_, latency_.slowest(clock::now()));
  hand_over(unit);
  return true;
}

void handler_lane::give_back_rest(lane_unit& unit, std::size_t first) {
  // Called between handlers: the worker cannot take the unit over meanwhile.
  auto& items = unit.items;
  auto begin = items.begin() + static_cast<std::ptrdiff_t>(first);
  work_batch rest(std::make_move_iterator(begin), std::make_move_iterator(items.end()));
  items.erase(begin, items.end());
  ctx_->metrics.running.fetch_sub(static_cast<std::int64_t>(rest.size()),
                                  std::memory_order_relaxed);
  ctx_->queue.put_back(std::move(rest));
}

bool handler_lane::handle(lane_unit& unit, std::size_t i, const handler_entry* entry) {
  auto& item = unit.items[i];
  if (entry == nullptr) {
    if (ctx_->config.engine.unknown_topic == unknown_topic_policy::ack) {
      ctx_->metrics.unrouted.fetch_add(1, std::memory_order_relaxed);
      item.preset = outcome::ok();
    } else {
      item.preset = outcome::dead_letter("no handler for topic '" + item.msg.topic + "'");
    }
    return true;
  }
  auto timeout = ctx_->config.engine.handler_timeout;
  auto started = clock::now();
  std::shared_ptr<async_call> call;
  std::string key; // of an asynchronous call, copied: its completion moves the item
  if (entry->async) {
    if (ctx_->queue.keyed()) {
      key = ctx_->queue.key_of(item.msg);
    }
    // The call owns the message from here; written before the progress word
    // says "running", so a watchdog taking over never reads it half-moved.
    call = std::make_shared<async_call>(ctx_, std::move(item), started + timeout);
    item.async_started = true;
    ctx_->async.add(call);
  }
  unit.started_ns.store(steady_ns(), std::memory_order_relaxed);
  unit.progress.store(lane_unit::word(i, lane_unit::running), std::memory_order_release);
  std::optional<outcome> out;
  if (call) {
    // Only the handler's completion moves the message: safe to read here.
    handler_context hctx{started + timeout, call->message().attempt, call->cancel_flag()};
    call_async(*ctx_, entry->async, call, hctx);
  } else {
    handler_context hctx{started + timeout, item.msg.attempt, &unit.cancelled};
    // As settlement decides: one more failure past the budget dead-letters.
    hctx.final_attempt = failures_of(item, 1) >= ctx_->config.retry.max_attempts;
    out = call_blocking(*ctx_, entry->blocking, item.msg, hctx);
  }
  auto expected = lane_unit::word(i, lane_unit::running);
  if (!unit.progress.compare_exchange_strong(
          expected, lane_unit::word(i, lane_unit::finished), std::memory_order_acq_rel)) {
    return false; // the worker timed this item out and owns the unit now
  }
  if (out) {
    auto finished = clock::now(); // one clock read per call: ~1 % of a no-op's cost
    item.handler_us = micros_between(started, finished);
    // A handler that gives up at its own deadline (the exec handler kills its
    // child there) timed out as surely as one the watchdog takes over.
    if (out->what == outcome::kind::retry && finished >= started + timeout) {
      ctx_->metrics.timeout(item.msg.topic);
    }
    item.preset = std::move(out);
  } else if (ctx_->queue.keyed()) {
    hold_back_key(unit, i, key);
  }
  return true;
}

void handler_lane::gather_batch(work_batch& items) {
  if (items.empty()) {
    return;
  }
  const auto* entry = ctx_->handlers.find(items.front().msg.topic);
  if (entry == nullptr || !entry->batch) {
    return;
  }
  const std::string topic = items.front().msg.topic; // a copy: take_until grows `items`
  // Counted as they come: each take is looked at once.
  auto of_topic = [&](std::size_t from) {
    return static_cast<std::size_t>(
        std::count_if(items.begin() + static_cast<std::ptrdiff_t>(from), items.end(),
                      [&](const work_item& w) { return w.msg.topic == topic; }));
  };
  const auto deadline = clock::now() + entry->limits.window;
  const auto max = entry->limits.max;
  auto have = of_topic(0);
  // Topped up to a whole number of batches: a unit taken with 7 items and a
  // max of 5 would otherwise run a call of 5 and a short call of 2 while more
  // items were on their way within the window.
  const auto want = (have + max - 1) / max * max;
  // The deadline is checked here too: a take past it returns at once while
  // items of other topics are ready, and must not loop on them.
  while (have < want && !stop_.load() && clock::now() < deadline) {
    auto before = items.size();
    if (!ctx_->queue.take_until(before + (want - have), items, deadline,
                                [this] { return stop_.load(std::memory_order_acquire); })) {
      break; // the window closed, or the lane stops
    }
    have += of_topic(before);
  }
}

namespace {

// The failures a batch handler returned, applied to its items: every item
// not named is acked; a name not in the batch is logged and ignored.
void apply_failures(work_batch& items, std::size_t first, std::size_t end,
                    std::vector<batch_item_failure>& failures) {
  std::unordered_map<std::string_view, std::size_t> by_id;
  for (std::size_t k = first; k < end; ++k) {
    by_id.emplace(items[k].msg.id, k);
  }
  for (std::size_t k = first; k < end; ++k) {
    items[k].preset = outcome::ok();
  }
  for (auto& f : failures) {
    auto it = by_id.find(f.id);
    if (it == by_id.end()) {
      spdlog::warn("batch handler named item '{}', which is not in its batch: ignored", f.id);
      continue;
    }
    items[it->second].preset = std::move(f.result);
  }
}

} // namespace

bool handler_lane::handle_batch(lane_unit& unit, std::size_t i, const handler_entry& entry,
                                std::size_t& end) {
  auto& items = unit.items;
  const auto& topic = items[i].msg.topic;
  std::vector<const envelope*> batch;
  end = i;
  std::uint32_t attempt = 1;
  for (; end < items.size() && batch.size() < entry.limits.max; ++end) {
    const auto& w = items[end];
    // items[i] was checked by run_unit: a revocation since then must not
    // leave the batch empty (it runs, as a single message would).
    if (end > i &&
        (w.msg.topic != topic || w.preset || w.requeue || ctx_->partitions.revoked(w))) {
      break; // the batch is a contiguous run: order within a key is kept
    }
    batch.push_back(&w.msg);
    attempt = std::max(attempt, w.msg.attempt);
  }
  auto timeout = ctx_->config.engine.handler_timeout;
  auto started = clock::now();
  unit.batch_end.store(end, std::memory_order_relaxed);
  unit.started_ns.store(steady_ns(), std::memory_order_relaxed);
  unit.progress.store(lane_unit::word(i, lane_unit::running), std::memory_order_release);
  handler_context hctx{started + timeout, attempt, &unit.cancelled};
  std::vector<batch_item_failure> failures;
  std::optional<outcome> all; // decides every item when set
  try {
    failures = entry.batch(batch, hctx);
  } catch (const std::exception& e) {
    ctx_->metrics.handler_error(topic);
    all = outcome::retry(std::string{"batch handler threw: "} + e.what());
  } catch (...) {
    ctx_->metrics.handler_error(topic);
    all = outcome::retry("batch handler threw a non-standard exception");
  }
  auto expected = lane_unit::word(i, lane_unit::running);
  if (!unit.progress.compare_exchange_strong(
          expected, lane_unit::word(end - 1, lane_unit::finished), std::memory_order_acq_rel)) {
    return false; // the worker timed the batch out and owns the unit now
  }
  unit.batch_end.store(0, std::memory_order_relaxed);
  auto finished = clock::now();
  if (!all && finished >= started + timeout) {
    ctx_->metrics.timeout(topic);
    all = outcome::retry("batch handler returned after the handler timeout");
  }
  auto mean_us = micros_between(started, finished) / static_cast<std::int64_t>(end - i);
  for (std::size_t k = i; k < end; ++k) {
    items[k].handler_us = mean_us;
  }
  if (all) {
    for (std::size_t k = i; k < end; ++k) {
      items[k].preset = *all;
    }
  } else {
    apply_failures(items, i, end, failures);
    hold_back_behind_failures(items, i, end);
  }
  return true;
}

void handler_lane::hold_back_behind_failures(work_batch& items, std::size_t first,
                                             std::size_t end) {
  if (!ctx_->queue.keyed()) {
    return;
  }
  // An item of a key that failed is retried; the later items of that key in
  // the batch, though they ran, go back with it (without spending their
  // budget), so the key's order holds, as AWS asks of FIFO batch handlers.
  std::vector<std::string> failed;
  const bool keep_order = keeps_retry_order(*ctx_);
  for (std::size_t k = first; k < end; ++k) {
    auto& w = items[k];
    auto key = ctx_->queue.key_of(w.msg);
    bool behind = std::find(failed.begin(), failed.end(), key) != failed.end();
    if (behind) {
      w.preset.reset();
      w.requeue = std::chrono::milliseconds{0};
      w.behind_retry = keep_order;
    } else if (w.preset && w.preset->what != outcome::kind::ok) {
      failed.push_back(std::move(key));
    }
  }
}

void handler_lane::hold_back_key(lane_unit& unit, std::size_t i, const std::string& key) {
  // Later messages of the key must wait for this call's completion, not for
  // the lane: they go back to the queue, behind the key the call holds.
  auto& items = unit.items;
  auto end = i + 1;
  while (end < items.size() && ctx_->queue.key_of(items[end].msg) == key) {
    ++end;
  }
  if (end == i + 1) {
    return;
  }
  auto first = items.begin() + static_cast<std::ptrdiff_t>(i + 1);
  auto last = items.begin() + static_cast<std::ptrdiff_t>(end);
  work_batch later(std::make_move_iterator(first), std::make_move_iterator(last));
  items.erase(first, last);
  // Counted as they were taken (count_deliveries); they run later, and are
  // counted again then.
  if (!ctx_->source->counts_deliveries()) {
    work_batch counted;
    for (const auto& w : later) {
      if (!w.preset && !w.requeue) {
        counted.push_back(w);
      }
    }
    uncount_deliveries(*ctx_, counted);
  }
  ctx_->metrics.running.fetch_sub(static_cast<std::int64_t>(later.size()),
                                  std::memory_order_relaxed);
  ctx_->queue.put_back(std::move(later));
}

void handler_lane::hand_over(lane_unit& unit) {
  auto& items = unit.items;
  work_batch waiting;
  if (!retried_keys_.empty()) {
    waiting = take_behind_retry(*ctx_, retried_keys_); // while the keys are held
    retried_keys_.clear();
  }
  ctx_->queue.finish_all(items);
  if (!waiting.empty()) {
    // Never taken, so neither finished above nor counted as running.
    ctx_->metrics.running.fetch_add(static_cast<std::int64_t>(waiting.size()),
                                    std::memory_order_relaxed); // subtracted below
    std::move(waiting.begin(), waiting.end(), std::back_inserter(items));
  }
  work_batch decided;
  decided.reserve(items.size());
  bool all_decided = true;
  for (auto& item : items) {
    if (item.async_started) {
      all_decided = false;
    }
  }
  if (all_decided) {
    decided = std::move(items); // the common case: no per-item move
  } else {
    for (auto& item : items) {
      if (!item.async_started) {
        decided.push_back(std::move(item));
      }
    }
  }
  ctx_->metrics.running.fetch_sub(static_cast<std::int64_t>(decided.size()),
                                  std::memory_order_relaxed);
  ctx_->settle.push(std::move(decided));
}

} // namespace mailroom
