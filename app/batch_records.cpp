#include "app/batch_records.hpp"

#include <nlohmann/json.hpp>

namespace mailroom {

std::string base64_encode(const std::string& data) {
  // Written here: OpenSSL's EVP_EncodeBlock would do, but the app library
  // does not link OpenSSL for one encoder.
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve(4 * ((data.size() + 2) / 3));
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    auto n = (static_cast<unsigned char>(data[i]) << 16) |
             (static_cast<unsigned char>(data[i + 1]) << 8) |
             static_cast<unsigned char>(data[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (i < data.size()) {
    auto n = static_cast<unsigned char>(data[i]) << 16;
    if (i + 1 < data.size()) {
      n |= static_cast<unsigned char>(data[i + 1]) << 8;
    }
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += i + 1 < data.size() ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump(); // strict: throws on invalid UTF-8
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

} // namespace

std::string batch_records_json(const std::vector<const envelope*>& batch) {
  auto records = nlohmann::json::array();
  for (const auto* m : batch) {
    nlohmann::json r{{"id", m->id}, {"key", m->key}, {"topic", m->topic},
                     {"attempt", m->attempt}};
    auto headers = nlohmann::json::object();
    for (const auto& [name, value] : m->headers) {
      headers[name] = valid_utf8(value) ? value : base64_encode(value);
    }
    r["headers"] = std::move(headers);
    if (valid_utf8(m->payload)) {
      r["payload"] = m->payload;
    } else {
      r["payload_base64"] = base64_encode(m->payload);
    }
    records.push_back(std::move(r));
  }
  return records.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool parse_batch_response(const std::string& out, std::vector<std::string>& ids,
                          std::string& problem) {
  ids.clear();
  if (out.find_first_not_of(" \t\r\n") == std::string::npos) {
    return true;
  }
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded()) {
    problem = "the response is not JSON";
    return false;
  }
  if (j.is_null() || (j.is_object() && !j.contains("batchItemFailures"))) {
    return true;
  }
  if (!j.is_object() || !j["batchItemFailures"].is_array()) {
    problem = "the response has no batchItemFailures array";
    return false;
  }
  for (const auto& f : j["batchItemFailures"]) {
    if (!f.is_object() || !f.contains("itemIdentifier") || !f["itemIdentifier"].is_string()) {
      problem = "a batchItemFailures entry has no itemIdentifier string";
      ids.clear();
      return false;
    }
    ids.push_back(f["itemIdentifier"].get<std::string>());
  }
  return true;
}

} // namespace mailroom
