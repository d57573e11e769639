#include "transports/redis/attempt_errors_codec.hpp"

#include <nlohmann/json.hpp>

namespace mailroom {

std::string encode_attempt_errors(const std::vector<std::string>& errors) {
  nlohmann::json doc = nlohmann::json::array();
  for (const auto& e : errors) {
    doc.push_back(e);
  }
  // `replace` keeps dump() from throwing on a handler's non-UTF-8 error text.
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> decode_attempt_errors(std::string_view json) {
  std::vector<std::string> out;
  auto doc = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  if (!doc.is_array()) {
    return out;
  }
  out.reserve(doc.size());
  for (const auto& e : doc) {
    if (e.is_string()) {
      out.push_back(e.get<std::string>());
    } else {
      out.push_back(e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  }
  return out;
}

} // namespace mailroom
