#pragma once

// Number helpers the benchmark reports share: thousands separators and the
// median of a series of runs.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace mailroom::bench {

/// 1234567.4 -> "1,234,567"; "-" for a value that is not finite.
inline std::string grouped(double v) {
  if (!std::isfinite(v)) {
    return "-";
  }
  auto s = std::to_string(std::llround(v));
  auto first_digit = static_cast<long>(s[0] == '-' ? 1 : 0);
  for (auto i = static_cast<long>(s.size()) - 3; i > first_digit; i -= 3) {
    s.insert(static_cast<std::size_t>(i), ",");
  }
  return s;
}

/// The median of the finite values of `v` (the mean of the two middle ones
/// for an even count); NaN when there are none.
inline double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }),
          v.end());
  if (v.empty()) {
    return NAN;
  }
  std::sort(v.begin(), v.end());
  auto mid = v.size() / 2;
  return v.size() % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

} // namespace mailroom::bench
