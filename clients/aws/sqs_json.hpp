#pragma once

// Internal to clients/aws/*.cpp (they link nlohmann_json privately): the
// field readers that sqs_error.cpp and sqs_api.cpp share. Not for headers.

#include <string>

#include <nlohmann/json.hpp>

namespace mailroom::sqs_json {

/// Returns the string field `name` of `object`, or "" when it is absent or
/// not a string: a reply of an unexpected shape reads as empty, never throws.
inline std::string text(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

} // namespace mailroom::sqs_json
