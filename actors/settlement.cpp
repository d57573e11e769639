#include "actors/settlement.hpp"

#include <algorithm>
#include <spdlog/spdlog.h>
#include <thread>

#include "actors/engine_context.hpp"
#include "actors/messages.hpp"
#include "core/unix_time.hpp"

namespace mailroom {

namespace {

// Adapter I/O retries are short: a lane must not sit on a batch for long.
// (Its policy is the core one, with shorter delays than the checkpoint
// store's: five tries from 10 ms, capped at 1 s.)
constexpr io_retry_settings settle_io_retry{std::chrono::milliseconds{10},
                                           std::chrono::milliseconds{1000}, 4};

std::int64_t micros_since(clock::time_point t, clock::time_point now) {
  return std::chrono::duration_cast<std::chrono::microseconds>(now - t).count();
}

} // namespace

settlement::settlement(engine_context& ctx, std::uint64_t seed)
    : ctx_(&ctx), retry_(ctx_->config.retry, seed),
      io_retry_(settle_io_retry, seed ^ 0x9e3779b97f4a7c15ULL), tally_(&ctx.metrics.topics) {}

void settlement::note_io_failure(const char* what, const io_result& r) {
  ctx_->metrics.transport_error(r.failure);
  if (r.failure != failure_class::transient) {
    spdlog::error("{} failed: {}", what, r.what);
  }
}

void settlement::log_give_up(const char* what, const io_result& r) {
  spdlog::error("{} failed after retries: {}", what, r.what);
}

io_result settlement::release_then_nack(work_item& item,
                                        std::chrono::milliseconds delay) {
  // Release first: a redelivery racing ahead of the release would find its
  // own key in flight and be deferred for nothing.
  if (item.token != 0 && ctx_->idempotency) {
    ctx_->idempotency->release(item.store_key, item.token);
  }
  return nack(item, delay);
}

io_result settlement::nack(work_item& item, std::chrono::milliseconds delay) {
  return with_retries("nack", [&] { return ctx_->source->nack(item.msg, delay); });
}

void settlement::release_holds(const work_item& item) {
  release_lease(item);
  ctx_->partitions.leave(item);
}

void settlement::retry_all(work_batch& items) {
  if (retries_.empty()) {
    return;
  }
  // The history goes to the attempt log before the nack: once nacked, the
  // next delivery may be polled (here or elsewhere) at once.
  histories_.clear();
  histories_.reserve(retries_.size());
  entries_.clear();
  for (auto i : retries_) {
    const auto& msg = items[i].msg;
    histories_.push_back({msg.attempt, msg.attempt_errors, msg.first_failure_ms});
  }
  for (std::size_t j = 0; j < retries_.size(); ++j) {
    entries_.push_back({items[retries_[j]].msg.id, &histories_[j]});
  }
  auto r = ctx_->attempts->record(entries_);
  if (!r) {
    ctx_->metrics.store_error(r.failure);
    if (!history_failing_) {
      spdlog::warn("settle: attempt log unavailable ({}); retried messages lose this "
                   "attempt's error",
                   r.what);
    }
  } else if (history_failing_) {
    spdlog::info("settle: attempt log answers again");
  }
  history_failing_ = !r;
  for (auto i : retries_) {
    auto& item = items[i];
    const auto& out = *item.preset;
    auto failures = failures_of(item);
    auto r2 = release_then_nack(item, out.delay ? *out.delay : retry_.delay(failures));
    count(item, r2.stale ? topic_counter::fenced : topic_counter::retried);
  }
}

void settlement::forget_histories(const std::vector<const envelope*>& msgs) {
  forget_ids_.clear();
  // Without the broker's count every delivery was counted in the log.
  bool counted = !ctx_->source->counts_deliveries();
  for (const envelope* m : msgs) {
    if (counted || !m->attempt_errors.empty()) {
      forget_ids_.emplace_back(m->id);
    }
  }
  if (forget_ids_.empty()) {
    return;
  }
  if (auto r = ctx_->attempts->forget(forget_ids_); !r) {
    ctx_->metrics.store_error(r.failure);
    spdlog::debug("settle: forgetting {} attempt histories failed: {}", forget_ids_.size(),
                  r.what);
  }
}

void settlement::settle(work_batch& items) {
  auto& m = ctx_->metrics;
  // acked, retried, deduped and fenced are counted per topic in `tally_`,
  // and the engine-wide totals are its sums.
  std::uint64_t deferred = 0, handed_back = 0, revoked = 0;
  tally_.reset(); // what a batch that threw counted is not this batch's
  acks_.clear();
  retries_.clear();
  behind_.clear();
  completions_.clear();
  completion_items_.clear();
  parked_.clear();
  std::vector<bool> parked(items.size(), false);
  std::vector<bool> keep_claim(items.size(), false);

  for (std::size_t i = 0; i < items.size(); ++i) {
    auto& item = items[i];
    if (item.revoked) {
      // Its partition is no longer ours: neither acked nor nacked, its claim
      // released and its record closed (below), so its next owner runs it.
      ++revoked;
      continue;
    }
    if (item.requeue && item.behind_retry) {
      behind_.push_back(i); // nacked after the retry it waits behind (below)
      keep_claim[i] = true;
      continue;
    }
    if (item.requeue) {
      if (release_then_nack(item, *item.requeue).stale) {
        count(item, topic_counter::fenced);
      } else {
        ++deferred;
        handed_back += item.drained ? 1 : 0;
      }
      keep_claim[i] = true;
      continue;
    }
    auto& out = *item.preset;
    switch (out.what) {
    case outcome::kind::ok:
      if (item.token != 0) {
        completions_.push_back({item.store_key, item.token, {}});
        completion_items_.push_back(i);
      } else {
        acks_.push_back(&item.msg);
        if (item.duplicate) {
          count(item, topic_counter::deduped);
        }
      }
      break;
    case outcome::kind::retry: {
      item.msg.attempt_errors.push_back(out.reason);
      if (item.msg.first_failure_ms == 0) {
        item.msg.first_failure_ms = unix_ms_now();
      }
      auto failures = failures_of(item);
      if (retry_.may_retry(failures)) {
        retries_.push_back(i);
        keep_claim[i] = true;
      } else {
        out = outcome::dead_letter("max attempts (" +
                                   std::to_string(retry_.settings().max_attempts) +
                                   ") exhausted; last error: " + out.reason);
        parked[i] = true;
      }
      break;
    }
    case outcome::kind::dead_letter:
      parked[i] = true;
      break;
    }
  }

  retry_all(items);
  for (auto i : behind_) {
    if (release_then_nack(items[i], *items[i].requeue).stale) {
      count(items[i], topic_counter::fenced);
    } else {
      ++deferred;
    }
  }

  // One batched complete for every claimed ok: only an applied complete may
  // be acked; a fenced one belongs to the newer claim, which settles it.
  if (!completions_.empty()) {
    auto results =
        ctx_->idempotency->complete(completions_, ctx_->config.dedupe.result_ttl);
    for (std::size_t j = 0; j < completion_items_.size(); ++j) {
      auto& item = items[completion_items_[j]];
      auto r = j < results.size() ? results[j] : fence_result::unavailable;
      if (r == fence_result::applied) {
        acks_.push_back(&item.msg);
        keep_claim[completion_items_[j]] = true; // done now: nothing to release
      } else if (r == fence_result::fenced) {
        count(item, topic_counter::fenced);
        keep_claim[completion_items_[j]] = true; // someone else's claim now
      } else {
        // The side effect happened but could not be recorded: hand the
        // message back rather than ack what the store does not know is done.
        m.store_error(failure_class::transient);
        if (nack(item, ctx_->config.dedupe.store_error_delay).stale) {
          count(item, topic_counter::fenced);
        } else {
          ++deferred;
        }
      }
    }
  }
  std::uint64_t ack_failed = 0;
  if (!acks_.empty()) {
    // An ack that failed for good is not counted as acked: the transport
    // delivers those messages again once their lease runs out.
    stale_.clear();
    if (with_retries("ack", [&] {
          stale_.clear();
          return ctx_->source->ack_checked(acks_, stale_);
        })) {
      // A stale ack (its partition was revoked) settled nothing: fenced.
      // Retried calls may report an index twice or out of order.
      std::sort(stale_.begin(), stale_.end());
      stale_.erase(std::unique(stale_.begin(), stale_.end()), stale_.end());
      for (auto it = stale_.rbegin(); it != stale_.rend(); ++it) {
        if (*it < acks_.size()) {
          tally_.add(acks_[*it]->topic, topic_counter::fenced);
          acks_.erase(acks_.begin() + static_cast<std::ptrdiff_t>(*it));
        }
      }
      for (const envelope* msg : acks_) {
        tally_.add(msg->topic, topic_counter::acked);
      }
      forget_histories(acks_);
    } else {
      ack_failed = acks_.size();
      tally_.discard(topic_counter::deduped);
    }
  }

  // Claims of handed-back and retried messages are released so the next
  // delivery is claimed at once; records of everything settled here turn
  // terminal (parked items wait until their dead-letter write succeeded).
  auto now = clock::now();
  marks_.clear();
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto& item = items[i];
    if (item.handler_us >= 0) {
      handler_durations_.record(static_cast<std::uint64_t>(item.handler_us));
      item.handler_us = -1; // a parked item handed back settles again: counted once
    }
    if (parked[i]) {
      continue;
    }
    if (!item.revoked) {
      latencies_.record(static_cast<std::uint64_t>(micros_since(item.msg.received, now)));
    }
    release_holds(item);
    if (item.token != 0 && !keep_claim[i] && ctx_->idempotency) {
      ctx_->idempotency->release(item.store_key, item.token);
    }
    if (item.recorded) {
      marks_.push_back({item.store_key, item.token});
    }
  }
  if (ctx_->claims && !marks_.empty()) {
    ctx_->claims->mark_terminal_all(marks_);
  }

  m.acked.fetch_add(tally_.total(topic_counter::acked), std::memory_order_relaxed);
  m.retried.fetch_add(tally_.total(topic_counter::retried), std::memory_order_relaxed);
  m.deferred.fetch_add(deferred, std::memory_order_relaxed);
  m.handed_back.fetch_add(handed_back, std::memory_order_relaxed);
  m.deduped.fetch_add(tally_.total(topic_counter::deduped), std::memory_order_relaxed);
  m.ack_failures.fetch_add(ack_failed, std::memory_order_relaxed);
  m.fenced.fetch_add(tally_.total(topic_counter::fenced), std::memory_order_relaxed);
  m.revoked.fetch_add(revoked, std::memory_order_relaxed);
  tally_.flush();
  m.add_latencies(latencies_, handler_durations_);
  latencies_.reset();
  handler_durations_.reset();

  for (std::size_t i = 0; i < items.size(); ++i) {
    if (parked[i]) {
      parked_.push_back(std::move(items[i]));
    }
  }
  report_settled(items.size() - parked_.size());
  if (!parked_.empty()) {
    caf::anon_send(ctx_->handle(role::dead_letter), park_atom::value,
                   park_batch{std::move(parked_)});
    parked_ = work_batch{};
  }
}

void settlement::forget(const work_batch& items) {
  marks_.clear();
  for (auto& item : items) {
    release_holds(item);
    if (item.token != 0 && ctx_->idempotency) {
      ctx_->idempotency->release(item.store_key, item.token);
    }
    if (item.recorded) {
      marks_.push_back({item.store_key, item.token});
    }
  }
  if (ctx_->claims && !marks_.empty()) {
    ctx_->claims->mark_terminal_all(marks_);
  }
}

void settlement::report_settled(std::size_t n) {
  if (n == 0) {
    return;
  }
  ctx_->metrics.leave(static_cast<std::int64_t>(n));
  caf::anon_send(ctx_->handle(role::supervisor), settled_atom::value,
                 static_cast<std::uint64_t>(n));
}

} // namespace mailroom
