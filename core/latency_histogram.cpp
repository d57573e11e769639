#include "core/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace mailroom {

int latency_histogram::index_of(std::uint64_t v) {
  if (v < sub_count) {
    return static_cast<int>(v);
  }
  int msb = 63 - __builtin_clzll(v);
  int group = msb - sub_bits + 1;
  auto sub = static_cast<int>((v >> (msb - sub_bits)) & (sub_count - 1));
  return std::min(group * sub_count + sub, groups * sub_count - 1);
}

std::uint64_t latency_histogram::upper_bound_of(int index) {
  int group = index / sub_count;
  int sub = index % sub_count;
  if (group == 0) {
    return static_cast<std::uint64_t>(sub);
  }
  int shift = group - 1;
  return ((static_cast<std::uint64_t>(sub_count + sub) + 1) << shift) - 1;
}

void latency_histogram::merge(const latency_histogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    counts_[i] += other.counts_[i];
  }
  total_ += other.total_;
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void latency_histogram::cumulative(const std::uint64_t* bounds_us, std::uint64_t* out,
                                   std::size_t n) const {
  std::fill(out, out + n, 0);
  std::size_t b = 0;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size() && b < n; ++i) {
    // Every bound below this bucket's top has all the samples seen so far.
    while (b < n && upper_bound_of(static_cast<int>(i)) > bounds_us[b]) {
      out[b++] = seen;
    }
    seen += counts_[i];
  }
  for (; b < n; ++b) {
    out[b] = seen;
  }
}

std::uint64_t latency_histogram::quantile(double q) const {
  if (total_ == 0) {
    return 0;
  }
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      return std::min(upper_bound_of(static_cast<int>(i)), max_);
    }
  }
  return max_;
}

void latency_histogram::reset() {
  counts_.fill(0);
  total_ = 0;
  max_ = 0;
  sum_ = 0;
}

} // namespace mailroom
