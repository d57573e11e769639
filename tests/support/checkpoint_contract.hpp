#pragma once

// Test support: the behaviour every checkpoint store must have, one body for
// the memory and the Redis stores.

#include <algorithm>
#include <string>
#include <vector>

#include "core/checkpoint_store.hpp"

namespace mailroom::testing {

/// Returns the checkpoints of `key` sorted by step, requiring the store to answer.
inline std::vector<checkpoint> loaded(checkpoint_store& store, const std::string& key) {
  std::vector<checkpoint> out;
  auto r = store.load(key, out);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), "load failed: " + r.what);
  std::sort(out.begin(), out.end(),
            [](const checkpoint& a, const checkpoint& b) { return a.step < b.step; });
  return out;
}

/// Checks writes, reads, loads, overwrites, byte-exact values, isolation of
/// keys and a history larger than one page. Keys start with a fresh prefix
/// per call so a shared store can run it more than once.
inline void checkpoint_contract(checkpoint_store& store) {
  static int run = 0;
  auto k = [](const std::string& name) { return "contract-" + std::to_string(run) + "-" + name; };
  ++run;
  // Nothing yet.
  BOOST_TEST(loaded(store, k("a")).empty());
  std::optional<std::string> one{"stale"};
  BOOST_REQUIRE(static_cast<bool>(store.read(k("a"), "0", one)));
  BOOST_TEST(!one.has_value());

  // One batch across two keys, a later write of a step winning.
  std::string binary{"\0\xff\r\n:", 5};
  BOOST_REQUIRE(static_cast<bool>(store.write({{k("a"), "0", "first"},
                                               {k("b"), "0", binary},
                                               {k("a"), "1", "second"},
                                               {k("a"), "0", "first again"}})));
  auto a = loaded(store, k("a"));
  BOOST_REQUIRE(a.size() == 2u);
  BOOST_TEST(a[0].key == k("a"));
  BOOST_TEST(a[0].step == "0");
  BOOST_TEST(a[0].result == "first again");
  BOOST_TEST(a[1].result == "second");
  auto b = loaded(store, k("b"));
  BOOST_REQUIRE(b.size() == 1u);
  BOOST_TEST(b[0].result == binary);
  BOOST_REQUIRE(static_cast<bool>(store.read(k("a"), "1", one)));
  BOOST_TEST(one.value_or("") == "second");

  // An empty batch is a success that changes nothing.
  BOOST_TEST(static_cast<bool>(store.write({})));

  // A history of 2500 steps comes back whole (the Redis store pages it).
  std::vector<checkpoint> many;
  for (int i = 0; i < 2500; ++i) {
    many.push_back({k("big"), "s" + std::to_string(i), std::to_string(i)});
  }
  BOOST_REQUIRE(static_cast<bool>(store.write(many)));
  auto big = loaded(store, k("big"));
  BOOST_REQUIRE(big.size() == 2500u);
  std::vector<std::string> steps;
  for (const auto& c : big) {
    steps.push_back(c.step);
    BOOST_TEST(c.step == "s" + c.result);
  }
  BOOST_TEST((std::adjacent_find(steps.begin(), steps.end()) == steps.end())); // no duplicates
}

} // namespace mailroom::testing
