#define BOOST_TEST_MODULE retry_policy
#include <boost/test/unit_test.hpp>

#include "core/retry_policy.hpp"

using namespace mailroom;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(ceiling_doubles_from_base_up_to_cap) {
  retry_policy p{{100ms, 1000ms, 5}};
  BOOST_TEST(p.ceiling(1).count() == 100);
  BOOST_TEST(p.ceiling(2).count() == 200);
  BOOST_TEST(p.ceiling(3).count() == 400);
  BOOST_TEST(p.ceiling(4).count() == 800);
  BOOST_TEST(p.ceiling(5).count() == 1000);
  BOOST_TEST(p.ceiling(64).count() == 1000);
  BOOST_TEST(p.ceiling(4000000000u).count() == 1000);
}

BOOST_AUTO_TEST_CASE(full_jitter_stays_in_bounds_and_spreads) {
  retry_policy p{{100ms, 1000ms, 5}, 7};
  for (std::uint32_t attempt = 1; attempt <= 6; ++attempt) {
    auto ceiling = p.ceiling(attempt).count();
    std::int64_t lo = ceiling, hi = 0, sum = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      auto d = p.delay(attempt).count();
      BOOST_REQUIRE(d >= 0);
      BOOST_REQUIRE(d <= ceiling);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
      sum += d;
    }
    // Uniform on [0, ceiling]: the extremes are reached and the mean is half.
    BOOST_TEST(lo <= ceiling / 50);
    BOOST_TEST(hi >= ceiling - ceiling / 50);
    auto mean = static_cast<double>(sum) / n;
    BOOST_TEST(mean > ceiling * 0.45);
    BOOST_TEST(mean < ceiling * 0.55);
  }
}

BOOST_AUTO_TEST_CASE(budget_counts_attempts) {
  retry_policy p{{1ms, 10ms, 3}};
  BOOST_TEST(p.may_retry(1));
  BOOST_TEST(p.may_retry(2));
  BOOST_TEST(!p.may_retry(3));
}
