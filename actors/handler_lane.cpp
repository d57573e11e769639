#include "actors/handler_lane.hpp"

#include <spdlog/spdlog.h>

#include "actors/engine_context.hpp"
#include "actors/worker_inbox.hpp"

namespace mailroom {

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             clock::now().time_since_epoch())
      .count();
}

// Exceptions and unknown topics become outcomes here, so nothing a handler
// does can unwind into the engine.
outcome invoke(engine_context& ctx, const envelope& msg, handler_context& hctx) {
  auto* fn = ctx.handlers.find(msg.topic);
  if (fn == nullptr) {
    if (ctx.config.engine.unknown_topic == unknown_topic_policy::ack) {
      ctx.metrics.unrouted.fetch_add(1, std::memory_order_relaxed);
      return outcome::ok();
    }
    return outcome::dead_letter("no handler for topic '" + msg.topic + "'");
  }
  try {
    return (*fn)(msg, hctx);
  } catch (const std::exception& e) {
    ctx.metrics.handler_errors.fetch_add(1, std::memory_order_relaxed);
    return outcome::retry(std::string{"handler threw: "} + e.what());
  } catch (...) {
    ctx.metrics.handler_errors.fetch_add(1, std::memory_order_relaxed);
    return outcome::retry("handler threw a non-standard exception");
  }
}

} // namespace

handler_lane::handler_lane(std::shared_ptr<engine_context> ctx,
                           std::shared_ptr<worker_inbox> inbox, std::uint64_t seed)
    : ctx_(ctx), inbox_(std::move(inbox)), settle_(std::move(ctx), seed) {}

handler_lane::~handler_lane() {
  if (thread_.joinable()) {
    thread_.detach();
  }
}

void handler_lane::start() {
  // The thread holds its own reference: an abandoned lane outlives its worker.
  thread_ = std::thread([self = shared_from_this()] { self->run(); });
}

std::shared_ptr<lane_job> handler_lane::current() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return job_;
}

void handler_lane::abandon() {
  abandoned_.store(true, std::memory_order_release);
  stop_.store(true, std::memory_order_release);
}

void handler_lane::shutdown() {
  stop_.store(true, std::memory_order_release);
  inbox_->wake_all();
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
  static std::atomic<std::uint64_t> next_job_id{1};
  for (;;) {
    work_batch items;
    if (!inbox_->wait_take(max_job_items, items,
                           [this] { return stop_.load(std::memory_order_acquire); })) {
      break;
    }
    auto job = std::make_shared<lane_job>();
    job->id = next_job_id.fetch_add(1, std::memory_order_relaxed);
    job->items = std::move(items);
    {
      std::lock_guard<std::mutex> guard{mutex_};
      job_ = job;
      busy_.store(true, std::memory_order_release);
    }
    if (!run_job(*job) || abandoned_.load(std::memory_order_acquire)) {
      break;
    }
    std::lock_guard<std::mutex> guard{mutex_};
    job_.reset();
    busy_.store(false, std::memory_order_release);
  }
  exited_.store(true, std::memory_order_release);
}

bool handler_lane::run_job(lane_job& job) {
  auto timeout = ctx_->config.engine.handler_timeout;
  for (std::size_t i = 0; i < job.items.size(); ++i) {
    auto& item = job.items[i];
    if (item.preset || item.requeue) {
      continue;
    }
    if (inbox_->handing_back()) {
      item.requeue = std::chrono::milliseconds{0}; // drain deadline: not run
      continue;
    }
    auto started = clock::now();
    job.started_ns.store(steady_ns(), std::memory_order_relaxed);
    job.progress.store(lane_job::word(i, lane_job::running), std::memory_order_release);
    handler_context hctx{started + timeout, item.msg.attempt, &job.cancelled};
    auto out = invoke(*ctx_, item.msg, hctx);
    auto expected = lane_job::word(i, lane_job::running);
    if (!job.progress.compare_exchange_strong(
            expected, lane_job::word(i, lane_job::finished), std::memory_order_acq_rel)) {
      // The worker timed this item out and owns the job now.
      return false;
    }
    item.preset = std::move(out);
  }
  job.progress.store(lane_job::word(job.items.size(), lane_job::settling),
                     std::memory_order_release);
  settle_.settle(job.items);
  return true;
}

} // namespace mailroom
