#pragma once

#include <string>
#include <string_view>
#include <vector>


namespace mailroom {

/// Encodes a message's attempt errors as a JSON array of strings, the form
/// written to a dead-letter stream's `errors` field.
///
/// Bytes that are not valid UTF-8 become U+FFFD: error texts are for people,
/// and a valid JSON document matters more to them than those bytes.
std::string encode_attempt_errors(const std::vector<std::string>& errors);

/// Decodes what encode_attempt_errors() produced. Returns an empty list for
/// anything that is not a JSON array; elements that are not strings are
/// kept as their JSON text.
std::vector<std::string> decode_attempt_errors(std::string_view json);

} // namespace mailroom
