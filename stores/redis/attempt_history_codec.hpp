#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/attempt_log.hpp"

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

/// Encodes a history as the Redis attempt log keeps it:
/// `{"deliveries":N,"errors":[...]}`.
std::string encode_attempt_history(const attempt_history& h);

/// Decodes what encode_attempt_history() produced; a bare JSON array (the
/// errors alone) is read too. Returns nullopt for anything else.
std::optional<attempt_history> decode_attempt_history(std::string_view json);

} // namespace mailroom
