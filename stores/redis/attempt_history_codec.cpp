#include "stores/redis/attempt_history_codec.hpp"

#include <nlohmann/json.hpp>

namespace mailroom {

namespace {

std::string dump(const nlohmann::json& doc) {
  // `replace` keeps dump() from throwing on a handler's non-UTF-8 error text.
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json errors_array(const std::vector<std::string>& errors) {
  nlohmann::json doc = nlohmann::json::array();
  for (const auto& e : errors) {
    doc.push_back(e);
  }
  return doc;
}

std::vector<std::string> errors_of(const nlohmann::json& doc) {
  std::vector<std::string> out;
  out.reserve(doc.size());
  for (const auto& e : doc) {
    out.push_back(e.is_string() ? e.get<std::string>() : dump(e));
  }
  return out;
}

} // namespace

std::string encode_attempt_errors(const std::vector<std::string>& errors) {
  return dump(errors_array(errors));
}

std::vector<std::string> decode_attempt_errors(std::string_view json) {
  auto doc = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  return doc.is_array() ? errors_of(doc) : std::vector<std::string>{};
}

} // namespace mailroom
