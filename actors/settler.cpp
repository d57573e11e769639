#include "actors/settler.hpp"

#include <spdlog/spdlog.h>

#include "actors/engine_context.hpp"
#include "actors/lease_tracker.hpp"
#include "actors/settlement.hpp"

namespace mailroom {

settler::settler() = default;

settler::~settler() {
  stop();
}

void settler::start(engine_context& ctx) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (started_) {
    return;
  }
  started_ = true;
  ctx_ = &ctx;
  settle_ = std::make_unique<settlement>(ctx, 0x5e771eULL);
  thread_ = std::thread([this] { run(); });
}

void settler::push(work_batch&& items) {
  if (items.empty()) {
    return;
  }
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (stopped_) {
      return;
    }
    queued_ += items.size();
    pending_.push_back(std::move(items));
  }
  ready_.notify_one();
}

void settler::push(work_item&& item) {
  work_batch one;
  one.push_back(std::move(item));
  push(std::move(one));
}

std::size_t settler::queued() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return queued_;
}

void settler::run() {
  std::vector<work_batch> taken;
  for (;;) {
    {
      std::unique_lock<std::mutex> guard{mutex_};
      ready_.wait(guard, [this] { return !pending_.empty() || stopping_; });
      if (pending_.empty()) {
        return; // stopping, and everything queued was settled
      }
      taken.swap(pending_);
      queued_ = 0;
    }
    // Everything that gathered meanwhile is settled as one batch.
    work_batch batch = std::move(taken.front());
    if (taken.size() > 1) {
      // taken.front() is moved from: its items are batch's now.
      std::size_t total = batch.size();
      for (std::size_t i = 1; i < taken.size(); ++i) {
        total += taken[i].size();
      }
      batch.reserve(total); // one allocation, each item moved once
      for (std::size_t i = 1; i < taken.size(); ++i) {
        std::move(taken[i].begin(), taken[i].end(), std::back_inserter(batch));
      }
    }
    taken.clear();
    try {
      settle_->settle(batch);
    } catch (const std::exception& e) {
      // Adapters return errors as values; this is a bug or an allocation
      // failure. The batch is given up on, unsettled: its leases are let go
      // so the transport redelivers it, and its budget returns.
      spdlog::error("settler: a batch of {} failed to settle: {}", batch.size(), e.what());
      for (auto& item : batch) {
        release_lease(item);
        ctx_->partitions.leave(item);
      }
      // Left to the transport's redelivery: handed back, in the counts.
      ctx_->metrics.deferred.fetch_add(batch.size(), std::memory_order_relaxed);
      settle_->report_settled(batch.size());
    }
  }
}

void settler::stop() {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (!started_ || stopping_) {
      return;
    }
    stopping_ = true;
  }
  ready_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  std::lock_guard<std::mutex> guard{mutex_};
  stopped_ = true;
  pending_.clear();
  queued_ = 0;
}

} // namespace mailroom
