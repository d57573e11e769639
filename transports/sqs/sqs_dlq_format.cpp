#include "transports/sqs/sqs_dlq_format.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace mailroom::sqs_dlq_format {

std::string pack(const original_message& m) {
  if (m.attributes.empty() && m.group_id.empty()) {
    return {};
  }
  nlohmann::json j = nlohmann::json::object();
  j["attributes"] = nlohmann::json::array();
  for (const auto& [name, value] : m.attributes) {
    j["attributes"].push_back({name, value}); // pairs: order and repeats kept
  }
  if (!m.group_id.empty()) {
    j["group_id"] = m.group_id;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<original_message> unpack(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) {
    return std::nullopt;
  }
  original_message out;
  auto attributes = j.find("attributes");
  if (attributes != j.end() && attributes->is_array()) {
    for (const auto& pair : *attributes) {
      if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string()) {
        out.attributes.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
      }
    }
  }
  auto group = j.find("group_id");
  if (group != j.end() && group->is_string()) {
    out.group_id = group->get<std::string>();
  }
  return out;
}

std::optional<std::string> replay_key(const attribute_list& attributes,
                                      const std::string& attribute_key) {
  const std::string* of = nullptr;
  const std::string* count = nullptr;
  for (const auto& [name, value] : attributes) {
    if (name == replay_of) {
      of = &value;
    } else if (name == replayed) {
      count = &value;
    }
  }
  if (of == nullptr || count == nullptr || of->empty()) {
    return std::nullopt;
  }
  return (attribute_key.empty() ? *of : attribute_key) + "/replay/" + *count;
}

std::string base64_encode(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(data.data()),
                           static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(const std::string& text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  auto n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(text.data()),
                           static_cast<int>(text.size()));
  if (n < 0) {
    return std::nullopt;
  }
  // EVP_DecodeBlock counts the padding as zero bytes.
  auto padding = text.empty() ? 0 : (text.back() == '=') + (text.size() > 1 && text[text.size() - 2] == '=');
  out.resize(static_cast<std::size_t>(n) - static_cast<std::size_t>(padding));
  return out;
}

} // namespace mailroom::sqs_dlq_format
