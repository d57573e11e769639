#pragma once

// How the configuration loader names TOML keys and values in its messages:
// dotted key paths, values as they appeared, "did you mean" for typos.

#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

namespace mailroom {

/// Known key names of one table.
using key_list = std::vector<std::string_view>;

/// Returns `s` as a TOML key: bare when it can be, quoted otherwise.
std::string key_text(std::string_view s);

/// Returns the dotted path of key `name` in table `prefix` ("" for the root).
std::string join(const std::string& prefix, std::string_view name);

/// Returns a node's value as TOML text, truncated for messages.
std::string value_text(const toml::node& n);

/// Returns a node's type and value ("integer 5", "string \"x\"", "table").
std::string describe(const toml::node& n);

/// Returns the problem text of an unknown key: the closest known key as a
/// "did you mean", else the list of known keys.
std::string unknown_key_problem(std::string_view name, const key_list& known);

/// Returns "one of \"a\", \"b\"" (or just "\"a\"" for one choice).
std::string one_of_text(const key_list& allowed);

/// Returns the word of `known` within typo distance of `word`, or "".
std::string closest_of(std::string_view word, const key_list& known);

} // namespace mailroom
