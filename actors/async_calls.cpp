#include "actors/async_calls.hpp"

#include <iterator>

#include "actors/engine_context.hpp"
#include "actors/retry_order.hpp"

namespace mailroom {

async_call::async_call(std::shared_ptr<engine_context> ctx, work_item item,
                       clock::time_point deadline)
    : ctx_(std::move(ctx)), item_(std::move(item)), deadline_(deadline) {}

bool async_call::complete(outcome result) {
  return decide(std::move(result), completed);
}

bool async_call::decide(std::optional<outcome> result, state as) {
  int expected = pending;
  if (!state_.compare_exchange_strong(expected, as, std::memory_order_acq_rel)) {
    if (as == completed) {
      auto& counter = expected == completed ? ctx_->metrics.duplicate_completions
                                            : ctx_->metrics.late_completions;
      counter.fetch_add(1, std::memory_order_relaxed);
    }
    return false;
  }
  if (as != completed) {
    cancelled_.store(true, std::memory_order_relaxed);
  }
  ctx_->async.remove(this); // the caller holds a reference: `this` lives on
  // A completed handler is done with its envelope; one that timed out or
  // was handed back may still read it, so the settler gets a copy.
  work_item settled = as == completed ? std::move(item_) : item_;
  if (result) {
    settled.preset = std::move(result);
  } else {
    settled.requeue = std::chrono::milliseconds{0};
    settled.drained = true;
  }
  settled.async_started = false;
  work_batch behind;
  bool retried = settled.preset && settled.preset->what == outcome::kind::retry;
  if (retried && keeps_retry_order(*ctx_)) {
    // Taken while the call still holds the key: the rest of the key waits
    // behind the retry instead of running first (actors/retry_order).
    behind = take_behind_retry(*ctx_, {ctx_->queue.key_of(settled.msg)});
  }
  ctx_->queue.finish(settled);
  ctx_->metrics.running.fetch_sub(1, std::memory_order_relaxed);
  if (behind.empty()) {
    ctx_->settle.push(std::move(settled));
  } else {
    work_batch batch;
    batch.reserve(1 + behind.size());
    batch.push_back(std::move(settled));
    std::move(behind.begin(), behind.end(), std::back_inserter(batch));
    ctx_->settle.push(std::move(batch));
  }
  return true;
}

void async_calls::add(const std::shared_ptr<async_call>& call) {
  std::lock_guard<std::mutex> guard{mutex_};
  call->self_ = call;
  call->prev_ = tail_;
  call->next_ = nullptr;
  if (tail_ != nullptr) {
    tail_->next_ = call.get();
  } else {
    head_ = call.get();
  }
  tail_ = call.get();
  ++size_;
}

void async_calls::remove(async_call* call) {
  std::shared_ptr<async_call> last_ref;
  std::lock_guard<std::mutex> guard{mutex_};
  if (!call->self_) {
    return; // never added, or removed already
  }
  if (call->prev_ != nullptr) {
    call->prev_->next_ = call->next_;
  } else {
    head_ = call->next_;
  }
  if (call->next_ != nullptr) {
    call->next_->prev_ = call->prev_;
  } else {
    tail_ = call->prev_;
  }
  call->prev_ = call->next_ = nullptr;
  --size_;
  // Released after the lock: the caller may hold the last other reference.
  last_ref = std::move(call->self_);
}

std::shared_ptr<async_call> async_calls::front() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return head_ != nullptr ? head_->self_ : nullptr;
}

std::size_t async_calls::expire_due(clock::time_point now) {
  std::size_t expired = 0;
  for (auto call = front(); call && call->deadline() <= now; call = front()) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  call->ctx_->config.engine.handler_timeout)
                  .count();
    if (call->decide(outcome::retry("handler timeout after " + std::to_string(ms) + " ms"),
                     async_call::expired)) {
      ++expired;
      call->ctx_->metrics.timeout(call->message().topic);
    } else {
      remove(call.get()); // decided meanwhile by its completion
    }
  }
  return expired;
}

std::size_t async_calls::hand_back_all() {
  std::size_t n = 0;
  for (auto call = front(); call; call = front()) {
    if (call->decide(std::nullopt, async_call::expired)) {
      ++n;
    } else {
      remove(call.get());
    }
  }
  return n;
}

std::size_t async_calls::pending() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return size_;
}

} // namespace mailroom
