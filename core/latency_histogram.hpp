#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace mailroom {

/// Log-linear latency histogram in microseconds (an HDR-style layout:
/// 16 linear sub-buckets per power of two, so any percentile is within
/// 1/16 = 6 % of the true value). Not thread-safe: keep one per thread and
/// `merge` them.
class latency_histogram {
public:
  /// Records one latency of `us` microseconds.
  void record(std::uint64_t us) {
    ++counts_[index_of(us)];
    ++total_;
    sum_ += us;
    if (us > max_) {
      max_ = us;
    }
  }

  /// Adds every sample of `other` to this histogram.
  void merge(const latency_histogram& other);

  /// Returns the latency at quantile `q` (0..1) in microseconds, 0 when empty.
  std::uint64_t quantile(double q) const;

  /// Returns the number of samples.
  std::uint64_t count() const { return total_; }

  /// Returns the largest sample in microseconds.
  std::uint64_t max() const { return max_; }

  /// Returns the sum of every sample in microseconds.
  std::uint64_t sum() const { return sum_; }

  /// Fills `out[i]` with the number of samples at most `bounds_us[i]`
  /// (ascending bounds), to within a sub-bucket (6 %): what a Prometheus
  /// histogram's cumulative `le` buckets hold.
  void cumulative(const std::uint64_t* bounds_us, std::uint64_t* out, std::size_t n) const;

  /// Forgets every sample.
  void reset();

private:
  static constexpr int sub_bits = 4;
  static constexpr int sub_count = 1 << sub_bits;
  static constexpr int groups = 64 - sub_bits;
  static int index_of(std::uint64_t v);
  static std::uint64_t upper_bound_of(int index);

  std::array<std::uint64_t, groups * sub_count> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t sum_ = 0;
};

} // namespace mailroom
