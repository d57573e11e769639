#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mailroom::bench {

/// One sample: when, how far the run was, and the resident set size then.
struct rss_sample {
  double t_s = 0;             ///< Seconds since the sampler started.
  std::uint64_t done = 0;     ///< Progress reported by the probe (messages settled).
  std::int64_t in_flight = 0; ///< In-flight gauge reported by the probe.
  std::uint64_t rss = 0;      ///< Current RSS, bytes.
};

/// A thread that samples current RSS (/proc/self/statm) and the run's
/// progress every `interval` until stopped, keeping every sample.
///
/// 10M messages at 250 ms is a few hundred samples: they are all kept.
class rss_sampler {
public:
  /// What the probe reports: messages done and messages in flight.
  using probe_fn = std::function<std::pair<std::uint64_t, std::int64_t>()>;

  /// Starts sampling at once.
  rss_sampler(std::chrono::milliseconds interval, probe_fn probe);

  /// Stops the thread if still running.
  ~rss_sampler();

  rss_sampler(const rss_sampler&) = delete;
  rss_sampler& operator=(const rss_sampler&) = delete;

  /// Takes a last sample, stops the thread and returns every sample.
  std::vector<rss_sample> finish();

private:
  void take();
  void run();

  std::chrono::milliseconds interval_;
  probe_fn probe_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::vector<rss_sample> samples_;
  std::thread thread_;
};

/// RSS at points of progress through a run, and whether it stayed flat.
struct rss_profile {
  /// RSS at the first sample with ≥ 10 % done and at least `warm_up_s` into
  /// the run, bytes.
  std::uint64_t at_10 = 0;
  std::uint64_t at_50 = 0; ///< Same at ≥ 50 %.
  std::uint64_t at_90 = 0; ///< Same at ≥ 90 %.
  std::uint64_t max = 0;   ///< Largest sampled RSS, bytes.
  double growth_10_90 = 0; ///< (at_90 - at_10) / at_10.
  double growth_50_90 = 0; ///< (at_90 - at_50) / at_50.
  /// Settle rate over the ~2 s before the 10 % / 90 % samples, msgs/s. The
  /// idempotency store holds result_ttl × rate keys, so RSS follows the rate:
  /// a rise in RSS with a rise in rate is not growth with the message count.
  double rate_at_10 = 0;
  double rate_at_90 = 0;        ///< See rate_at_10.
  double steady_msgs_per_s = 0; ///< Progress rate between the 10 % and 90 % samples.
  /// False when the run never reached 90 %, or reached it before its warm-up
  /// was over (too short a run for an RSS figure).
  bool valid = false;
};

/// Computes the profile of `samples` for a run of `total` messages. The
/// first reference sample is taken no earlier than `warm_up_s` seconds in:
/// the idempotency store only reaches its steady size (result_ttl × rate
/// keys) once its first results expire, and a fast run can pass 10 % before.
rss_profile profile_of(const std::vector<rss_sample>& samples, std::uint64_t total,
                       double warm_up_s = 0);

} // namespace mailroom::bench
