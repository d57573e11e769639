#pragma once

// The behaviour every attempt_log must have, written once and run by each
// implementation's test file against its own instance (memory_stores_test,
// redis_stores_test against a real redis-server), as store_contract.hpp is.
//
// Include after <boost/test/unit_test.hpp>.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/attempt_log.hpp"

namespace mailroom::testing::attempt_log_contract {

/// Loads the histories of `ids`, requiring success.
inline std::vector<std::optional<attempt_history>>
load(attempt_log& log, const std::vector<std::string_view>& ids) {
  std::vector<std::optional<attempt_history>> out;
  auto r = log.load(ids, out);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  BOOST_REQUIRE(out.size() == ids.size());
  return out;
}

/// A history is loaded as recorded, per id, and replaced by a later record;
/// ids never recorded have none; a batch answers in order.
inline void record_then_load(attempt_log& log) {
  attempt_history first{1, {"boom 1"}};
  attempt_history other{4, {"x", "", "line\r\nbreak", std::string("nul\0byte", 8)}};
  BOOST_REQUIRE(static_cast<bool>(log.record({{"m-1", &first}, {"m-2", &other}})));
  auto got = load(log, {"m-2", "never", "m-1"});
  BOOST_REQUIRE(got[0].has_value());
  BOOST_TEST(got[0]->deliveries == 4u);
  BOOST_TEST(got[0]->errors == other.errors);
  BOOST_TEST(!got[1].has_value());
  BOOST_REQUIRE(got[2].has_value());
  BOOST_TEST(got[2]->errors == first.errors);

  attempt_history second{2, {"boom 1", "boom 2"}};
  BOOST_REQUIRE(static_cast<bool>(log.record({{"m-1", &second}})));
  got = load(log, {"m-1"});
  BOOST_REQUIRE(got[0].has_value());
  BOOST_TEST(got[0]->deliveries == 2u);
  BOOST_TEST(got[0]->errors == second.errors);
}

/// Forgotten histories are gone; the others stay; forgetting what was never
/// recorded, and empty calls, succeed.
inline void forget_removes_only_what_it_names(attempt_log& log) {
  attempt_history h{1, {"e"}};
  BOOST_REQUIRE(static_cast<bool>(log.record({{"f-1", &h}, {"f-2", &h}})));
  BOOST_REQUIRE(static_cast<bool>(log.forget({"f-1", "unknown"})));
  auto got = load(log, {"f-1", "f-2"});
  BOOST_TEST(!got[0].has_value());
  BOOST_TEST(got[1].has_value());
  BOOST_TEST(static_cast<bool>(log.forget({})));
  BOOST_TEST(static_cast<bool>(log.record({})));
  BOOST_TEST(load(log, {}).empty());
}

/// Each delivery counts, whether or not it recorded an error; a record keeps
/// the count it is given, and later deliveries count on from there.
inline void deliveries_are_counted(attempt_log& log) {
  std::vector<attempt_history> got;
  BOOST_REQUIRE(static_cast<bool>(log.deliver({"d-1", "d-2"}, got)));
  BOOST_REQUIRE(got.size() == 2u);
  BOOST_TEST(got[0].deliveries == 1u);
  BOOST_TEST(got[0].errors.empty());
  BOOST_REQUIRE(static_cast<bool>(log.deliver({"d-1"}, got)));
  BOOST_TEST(got[0].deliveries == 2u);
  attempt_history failed{2, {"timeout"}, 1700000000000};
  BOOST_REQUIRE(static_cast<bool>(log.record({{"d-1", &failed}})));
  BOOST_REQUIRE(static_cast<bool>(log.deliver({"d-1", "d-2"}, got)));
  BOOST_TEST(got[0].deliveries == 3u);
  BOOST_TEST(got[0].errors == failed.errors);
  BOOST_TEST(got[0].first_failure_ms == 1700000000000);
  BOOST_TEST(got[1].deliveries == 2u);
  BOOST_REQUIRE(static_cast<bool>(log.forget({"d-1", "d-2"})));
  BOOST_REQUIRE(static_cast<bool>(log.deliver({"d-1"}, got)));
  BOOST_TEST(got[0].deliveries == 1u);
  BOOST_REQUIRE(static_cast<bool>(log.forget({"d-1"})));
}

/// Error texts that are not UTF-8 survive as far as a JSON document allows:
/// the invalid byte becomes U+FFFD, the rest stays.
inline void non_utf8_errors_are_kept_readable(attempt_log& log) {
  attempt_history h{1, {"bad \xff byte"}};
  BOOST_REQUIRE(static_cast<bool>(log.record({{"u-1", &h}})));
  auto got = load(log, {"u-1"});
  BOOST_REQUIRE(got[0].has_value());
  BOOST_REQUIRE(got[0]->errors.size() == 1u);
  auto& e = got[0]->errors[0];
  BOOST_TEST((e == "bad \xff byte" || e == "bad \xef\xbf\xbd byte"));
}

} // namespace mailroom::testing::attempt_log_contract
