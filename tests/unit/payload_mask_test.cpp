#define BOOST_TEST_MODULE payload_mask
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "core/payload_mask.hpp"

using mailroom::payload_mask;
using mailroom::unparsable_policy;
using nlohmann::json;

namespace {

// Returns the message of the std::invalid_argument `fn` throws, or "" if none.
template <class Fn> std::string invalid_argument_text(Fn fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

} // namespace

BOOST_AUTO_TEST_CASE(default_mask_changes_nothing) {
  payload_mask m;
  BOOST_TEST(m.empty());
  BOOST_TEST(m.apply(R"({"a": 1})") == R"({"a": 1})");
  BOOST_TEST(m.apply("not json") == "not json");
}

BOOST_AUTO_TEST_CASE(masks_nested_fields) {
  payload_mask m({"$.card.number", "$.user.email"});
  auto out = json::parse(m.apply(
      R"({"card":{"number":"4111111111111111","exp":"12/30"},"user":{"email":"a@b.c","id":7}})"));
  BOOST_TEST(out["card"]["number"] == "***");
  BOOST_TEST(out["card"]["exp"] == "12/30");
  BOOST_TEST(out["user"]["email"] == "***");
  BOOST_TEST(out["user"]["id"] == 7);
}

BOOST_AUTO_TEST_CASE(masks_whole_subtrees_and_non_string_values) {
  payload_mask m({"$.card", "$.pin"}, "", "[redacted]");
  auto out = json::parse(m.apply(R"({"card":{"number":"4111"},"pin":1234,"ok":true})"));
  BOOST_TEST(out["card"] == "[redacted]");
  BOOST_TEST(out["pin"] == "[redacted]");
  BOOST_TEST(out["ok"] == true);
}

BOOST_AUTO_TEST_CASE(masks_array_wildcard_and_index) {
  payload_mask m({"$.items[*].ssn", "$.rows[1]"});
  auto out = json::parse(m.apply(
      R"({"items":[{"ssn":"1","n":1},{"n":2},{"ssn":"3"}],"rows":["a","b","c"]})"));
  BOOST_TEST(out["items"][0]["ssn"] == "***");
  BOOST_TEST(out["items"][0]["n"] == 1);
  BOOST_TEST(!out["items"][1].contains("ssn"));
  BOOST_TEST(out["items"][2]["ssn"] == "***");
  BOOST_TEST(out["rows"] == json::parse(R"(["a","***","c"])"));
}

BOOST_AUTO_TEST_CASE(masks_object_wildcard_and_quoted_names) {
  payload_mask m({"$.secrets.*", "$['e-mail.addr']"});
  auto out =
      json::parse(m.apply(R"({"secrets":{"a":1,"b":[2]},"e-mail.addr":"x@y","k":1})"));
  BOOST_TEST(out["secrets"]["a"] == "***");
  BOOST_TEST(out["secrets"]["b"] == "***");
  BOOST_TEST(out["e-mail.addr"] == "***");
  BOOST_TEST(out["k"] == 1);
}

BOOST_AUTO_TEST_CASE(missing_path_leaves_payload_untouched) {
  payload_mask m({"$.card.number", "$.items[5]", "$.user[*].x"});
  // Nothing matched, so the text comes back byte for byte, spacing included.
  const std::string in = R"({ "card": {"cvv": 1}, "items": [1, 2], "user": "bob" })";
  BOOST_TEST(m.apply(in) == in);
  BOOST_TEST(m.apply("[1,2,3]") == "[1,2,3]");
  BOOST_TEST(m.apply("42") == "42");
}

BOOST_AUTO_TEST_CASE(regex_masks_every_match) {
  payload_mask m({}, R"(\b\d{16}\b)");
  BOOST_TEST(m.apply("cards 4111111111111111 and 5500000000000004, id 12345") ==
             "cards *** and ***, id 12345");
  // 17 digits are not a card number.
  BOOST_TEST(m.apply("41111111111111112") == "41111111111111112");
}

BOOST_AUTO_TEST_CASE(regex_runs_after_json_paths) {
  payload_mask m({"$.user.email"}, R"(\b\d{16}\b)", "XX");
  auto out = json::parse(
      m.apply(R"({"user":{"email":"a@b.c"},"note":"card 4111111111111111 used"})"));
  BOOST_TEST(out["user"]["email"] == "XX");
  BOOST_TEST(out["note"] == "card XX used");
}

BOOST_AUTO_TEST_CASE(replacement_is_literal_in_regex) {
  payload_mask m({}, "secret", "$& $1 $$");
  BOOST_TEST(m.apply("a secret b") == "a $& $1 $$ b");
}

BOOST_AUTO_TEST_CASE(non_json_payload_is_redacted_by_default_when_paths_are_set) {
  // The usual reason a message is dead-lettered is that it did not parse:
  // then no path can be found, and the card number went out in clear.
  payload_mask m({"$.card.number"});
  auto out = m.apply(R"({"card":{"number":"4111111111111111"},"bad":)");
  BOOST_TEST(out.find("4111") == std::string::npos);
  BOOST_TEST(out.rfind("[redacted: not JSON, 44 bytes, sha256 ", 0) == 0, out);
  // sha256("plain text"), checked with sha256sum.
  BOOST_TEST(m.apply("plain text") ==
             "[redacted: not JSON, 10 bytes, sha256 "
             "c9ecf5e54c7b3f2640ecca21f96d4c3625a2b7935104f41c5ede29935a9e52c9]");
  // A payload that parses keeps the field masking as before.
  BOOST_TEST(m.apply(R"({"card":{"number":"4111"}})") == R"({"card":{"number":"***"}})");
  // Without paths there is nothing to redact for: the text stays.
  BOOST_TEST(payload_mask(std::vector<std::string>{}).apply("plain text") == "plain text");
}

BOOST_AUTO_TEST_CASE(non_json_payload_gets_only_the_regex_with_the_regex_policy) {
  payload_mask m({"$.card.number"}, R"(\b\d{16}\b)", "***", unparsable_policy::regex);
  BOOST_TEST(m.apply("card=4111111111111111 {broken") == "card=*** {broken");
  payload_mask paths_only({"$.card.number"}, {}, "***", unparsable_policy::regex);
  BOOST_TEST(paths_only.apply("plain text") == "plain text");
  BOOST_TEST(paths_only.apply("") == "");
  BOOST_TEST(paths_only.apply(std::string("\xff\xfe{", 3)) ==
             std::string("\xff\xfe{", 3));
  payload_mask keep({"$.card.number"}, {}, "***", unparsable_policy::keep);
  BOOST_TEST(keep.apply("plain text") == "plain text");
}

BOOST_AUTO_TEST_CASE(the_documented_card_regex_masks_card_like_digit_runs) {
  // The optional expression config/default.toml documents for mask_regex.
  payload_mask m(std::vector<std::string>{}, R"(\b(?:\d[ -]?){12,18}\d\b)");
  BOOST_TEST(m.apply("pay 4111 1111 1111 1111 now") == "pay *** now");
  BOOST_TEST(m.apply("pay 4111-1111-1111-1111") == "pay ***");
  BOOST_TEST(m.apply("id 12345, order 2024") == "id 12345, order 2024");
}

BOOST_AUTO_TEST_CASE(deeply_nested_payload_is_masked_whole) {
  payload_mask m({"$.a"});
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  BOOST_TEST(m.apply(deep) == "***");
}

BOOST_AUTO_TEST_CASE(invalid_paths_are_rejected_with_a_reason) {
  auto text = [](const std::string& p) {
    return invalid_argument_text([&] { payload_mask m({p}); });
  };
  BOOST_TEST(text("card.number").find("must start with '$'") != std::string::npos);
  BOOST_TEST(text("$.card..number").find("expected a member name") != std::string::npos);
  BOOST_TEST(text("$.items[x]").find("expected an index") != std::string::npos);
  BOOST_TEST(text("$.items[1").find("expected ']'") != std::string::npos);
  BOOST_TEST(text("$.items[").find("unterminated '['") != std::string::npos);
  BOOST_TEST(text("$['abc]").find("unterminated quoted name") != std::string::npos);
  BOOST_TEST(text("$x").find("unexpected character 'x'") != std::string::npos);
  BOOST_TEST(text("$.a[99999999999999999999999]").find("too large") != std::string::npos);
  BOOST_TEST(text("$.a.").find("'$.a.'") != std::string::npos);
  BOOST_TEST(text("$.a[0]['b'].c[*]").empty());
}

BOOST_AUTO_TEST_CASE(invalid_regex_is_rejected_with_a_reason) {
  auto bad = invalid_argument_text([] { payload_mask m({}, "([0-9"); });
  BOOST_TEST(bad.find("mask regex '([0-9'") != std::string::npos);
  auto empty = invalid_argument_text([] { payload_mask m({}, "x*"); });
  BOOST_TEST(empty.find("matches the empty string") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(large_payload_is_masked) {
  json doc;
  for (int i = 0; i < 20000; ++i) {
    doc["items"].push_back({{"ssn", "123-45-6789"}, {"n", i}});
  }
  payload_mask m({"$.items[*].ssn"});
  auto out = json::parse(m.apply(doc.dump()));
  BOOST_TEST(out["items"].size() == 20000u);
  BOOST_TEST(out["items"][19999]["ssn"] == "***");
  BOOST_TEST(out["items"][19999]["n"] == 19999);
}
