#include "rss_sampler.hpp"

#include <algorithm>

#include "core/process_stats.hpp"

namespace mailroom::bench {

rss_sampler::rss_sampler(std::chrono::milliseconds interval, probe_fn probe)
    : interval_(interval), probe_(std::move(probe)),
      start_(std::chrono::steady_clock::now()) {
  samples_.reserve(4096);
  thread_ = std::thread([this] { run(); });
}

rss_sampler::~rss_sampler() {
  if (thread_.joinable()) {
    finish();
  }
}

void rss_sampler::take() {
  auto [done, in_flight] = probe_();
  rss_sample s;
  s.t_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  s.done = done;
  s.in_flight = in_flight;
  s.rss = current_rss_bytes();
  std::lock_guard<std::mutex> guard{mutex_};
  samples_.push_back(s);
}

void rss_sampler::run() {
  std::unique_lock<std::mutex> guard{mutex_};
  while (!stop_) {
    if (wake_.wait_for(guard, interval_, [this] { return stop_; })) {
      break;
    }
    guard.unlock();
    take();
    guard.lock();
  }
}

std::vector<rss_sample> rss_sampler::finish() {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  take();
  return samples_;
}

namespace {

// Rate over the ~2 s of samples before `at`, msgs/s.
double rate_before(const std::vector<rss_sample>& samples, const rss_sample* at) {
  auto i = static_cast<std::size_t>(at - samples.data());
  const rss_sample* from = at;
  while (i > 0 && at->t_s - from->t_s < 2.0) {
    from = &samples[--i];
  }
  return at->t_s > from->t_s
             ? static_cast<double>(at->done - from->done) / (at->t_s - from->t_s)
             : 0.0;
}

} // namespace

rss_profile profile_of(const std::vector<rss_sample>& samples, std::uint64_t total,
                       double warm_up_s) {
  rss_profile p;
  const rss_sample* first10 = nullptr; // for the rate: start-up excluded
  const rss_sample* s10 = nullptr;     // for RSS: also past the warm-up
  const rss_sample* s50 = nullptr;
  const rss_sample* s90 = nullptr;
  for (auto& s : samples) {
    p.max = std::max(p.max, s.rss);
    // done * 10 >= total * 1 means at least 10 %; integers avoid rounding.
    if (!first10 && s.done * 10 >= total * 1)
      first10 = &s;
    if (!s10 && s.done * 10 >= total * 1 && s.t_s >= warm_up_s)
      s10 = &s;
    if (!s50 && s.done * 10 >= total * 5)
      s50 = &s;
    if (!s90 && s.done * 10 >= total * 9)
      s90 = &s;
  }
  if (first10 && s90 && s90->t_s > first10->t_s) {
    p.steady_msgs_per_s =
        static_cast<double>(s90->done - first10->done) / (s90->t_s - first10->t_s);
  }
  if (s10 && s50 && s90 && s10 <= s50 && total > 0) {
    p.valid = true;
    p.at_10 = s10->rss;
    p.at_50 = s50->rss;
    p.at_90 = s90->rss;
    p.growth_10_90 =
        s10->rss ? (static_cast<double>(s90->rss) - static_cast<double>(s10->rss)) /
                       static_cast<double>(s10->rss)
                 : 0.0;
    p.growth_50_90 =
        s50->rss ? (static_cast<double>(s90->rss) - static_cast<double>(s50->rss)) /
                       static_cast<double>(s50->rss)
                 : 0.0;
    p.rate_at_10 = rate_before(samples, s10);
    p.rate_at_90 = rate_before(samples, s90);
  }
  return p;
}

} // namespace mailroom::bench
