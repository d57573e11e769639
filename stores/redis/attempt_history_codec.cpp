#include "stores/redis/attempt_history_codec.hpp"

#include <algorithm>
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

std::string encode_attempt_history(const attempt_history& h) {
  return dump({{"deliveries", h.deliveries}, {"errors", errors_array(h.errors)}});
}

std::optional<attempt_history> decode_attempt_history(std::string_view json) {
  auto doc = nlohmann::json::parse(json.begin(), json.end(), nullptr, false);
  attempt_history h;
  if (doc.is_array()) {
    h.errors = errors_of(doc);
    h.deliveries = static_cast<std::uint32_t>(h.errors.size());
    return h;
  }
  if (!doc.is_object()) {
    return std::nullopt;
  }
  if (auto e = doc.find("errors"); e != doc.end() && e->is_array()) {
    h.errors = errors_of(*e);
  }
  if (auto d = doc.find("deliveries"); d != doc.end() && d->is_number_unsigned()) {
    h.deliveries = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(d->get<std::uint64_t>(), UINT32_MAX));
  }
  return h;
}

} // namespace mailroom
