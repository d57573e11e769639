#include "core/metrics.hpp"

namespace mailroom {

void engine_metrics::enter(std::int64_t n) {
  auto now = in_flight_.fetch_add(n, std::memory_order_relaxed) + n;
  auto peak = in_flight_peak_.load(std::memory_order_relaxed);
  while (now > peak &&
         !in_flight_peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void engine_metrics::add_latencies(const latency_histogram& h) {
  std::lock_guard<std::mutex> guard{latency_mutex_};
  latency_.merge(h);
}

void engine_metrics::add_latencies(const latency_histogram& latencies,
                                   const latency_histogram& handlers) {
  std::lock_guard<std::mutex> guard{latency_mutex_};
  latency_.merge(latencies);
  handler_durations_.merge(handlers);
}

namespace {

void fill(latency_buckets& out, const latency_histogram& h) {
  h.cumulative(latency_buckets::bounds_us.data(), out.at_most.data(), out.at_most.size());
  out.count = h.count();
  out.sum_us = h.sum();
}

} // namespace

metrics_snapshot engine_metrics::snapshot() const {
  auto r = [](const std::atomic<std::uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  };
  metrics_snapshot s;
#define MAILROOM_COPY_FIELD(name, help) s.name = r(name);
  MAILROOM_ENGINE_COUNTERS(MAILROOM_COPY_FIELD)
#undef MAILROOM_COPY_FIELD
  s.running = running.load(std::memory_order_relaxed);
  s.in_flight = in_flight_.load(std::memory_order_relaxed);
  s.in_flight_peak = in_flight_peak_.load(std::memory_order_relaxed);
  s.polls_failing = polls_failing.load(std::memory_order_relaxed);
  s.topics = topics.snapshot();
  std::lock_guard<std::mutex> guard{latency_mutex_};
  s.p50_us = latency_.quantile(0.50);
  s.p99_us = latency_.quantile(0.99);
  s.max_us = latency_.max();
  fill(s.latency, latency_);
  fill(s.handler_durations, handler_durations_);
  return s;
}

} // namespace mailroom
