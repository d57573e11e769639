#include "clients/aws/aws_request.hpp"

#include <algorithm>

namespace mailroom {

namespace {

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_' || c == '.' || c == '~';
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ascii_lower(a) == ascii_lower(b);
}

} // namespace

const std::string* aws_request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (same_name(key, name)) {
      return &value;
    }
  }
  return nullptr;
}

void aws_request::set_header(std::string_view name, std::string value) {
  remove_header(name);
  headers.emplace_back(std::string{name}, std::move(value));
}

void aws_request::remove_header(std::string_view name) {
  headers.erase(std::remove_if(headers.begin(), headers.end(),
                               [&](const aws_field& h) { return same_name(h.first, name); }),
                headers.end());
}

std::string uri_encode(std::string_view text, bool keep_slash) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (unsigned char c : text) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0x0F];
    }
  }
  return out;
}

std::string encoded_query(const std::vector<aws_field>& query) {
  std::vector<aws_field> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(uri_encode(name, false), uri_encode(value, false));
  }
  // Sorting the encoded pairs (name first, then value) is what SigV4 asks for.
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) {
      out += '&';
    }
    out += name + '=' + value;
  }
  return out;
}

std::string ascii_lower(std::string_view text) {
  std::string out{text};
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string_view ascii_trim(std::string_view text) {
  auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) {
    return {};
  }
  return text.substr(begin, text.find_last_not_of(" \t\r\n") - begin + 1);
}

} // namespace mailroom
