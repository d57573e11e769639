#include "core/payload_mask.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

namespace mailroom {

namespace {

using detail::mask_step;
using json = nlohmann::json;

// Serialising is recursive in nlohmann::json; a hostile payload nested deeper
// than this could overflow the stack, so such payloads are masked whole.
constexpr std::size_t max_json_depth = 256;

bool is_name_char(char c) {
  return c != '.' && c != '[' && c != ']' && c != '\'' && c != '"' &&
         std::isspace(static_cast<unsigned char>(c)) == 0;
}

std::vector<mask_step> parse_path(const std::string& path) {
  auto fail = [&](const std::string& what) -> void {
    throw std::invalid_argument("mask path '" + path + "': " + what);
  };
  auto at = [](std::size_t i) { return " at offset " + std::to_string(i); };
  if (path.empty() || path[0] != '$') {
    fail("must start with '$'");
  }
  std::vector<mask_step> steps;
  std::size_t i = 1;
  while (i < path.size()) {
    mask_step s;
    if (path[i] == '.') {
      ++i;
      if (i < path.size() && path[i] == '*') {
        s.what = mask_step::kind::wildcard;
        ++i;
      } else {
        std::size_t start = i;
        while (i < path.size() && is_name_char(path[i])) {
          ++i;
        }
        if (i == start) {
          fail("expected a member name after '.'" + at(start));
        }
        s.name = path.substr(start, i - start);
      }
    } else if (path[i] == '[') {
      ++i;
      if (i >= path.size()) {
        fail("unterminated '['" + at(i - 1));
      }
      char c = path[i];
      if (c == '*') {
        s.what = mask_step::kind::wildcard;
        ++i;
      } else if (c == '\'' || c == '"') {
        std::size_t open = i++;
        bool closed = false;
        while (i < path.size()) {
          if (path[i] == '\\' && i + 1 < path.size()) {
            s.name += path[i + 1];
            i += 2;
          } else if (path[i] == c) {
            closed = true;
            ++i;
            break;
          } else {
            s.name += path[i++];
          }
        }
        if (!closed) {
          fail("unterminated quoted name" + at(open));
        }
      } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
        s.what = mask_step::kind::index;
        std::size_t start = i;
        while (i < path.size() &&
               std::isdigit(static_cast<unsigned char>(path[i])) != 0) {
          std::size_t digit = static_cast<std::size_t>(path[i] - '0');
          if (s.index > (std::numeric_limits<std::size_t>::max() - digit) / 10) {
            fail("array index too large" + at(start));
          }
          s.index = s.index * 10 + digit;
          ++i;
        }
      } else {
        fail("expected an index, '*' or a quoted name after '['" + at(i));
      }
      if (i >= path.size() || path[i] != ']') {
        fail("expected ']'" + at(i));
      }
      ++i;
    } else {
      fail(std::string("unexpected character '") + path[i] + "'" + at(i) +
           "; expected '.' or '['");
    }
    steps.push_back(std::move(s));
  }
  return steps;
}

// Returns true when something was replaced.
bool mask_at(json& node, const std::vector<mask_step>& path, std::size_t depth,
             const json& replacement) {
  if (depth == path.size()) {
    node = replacement;
    return true;
  }
  const mask_step& s = path[depth];
  bool hit = false;
  switch (s.what) {
  case mask_step::kind::member:
    if (node.is_object()) {
      if (auto it = node.find(s.name); it != node.end()) {
        hit = mask_at(*it, path, depth + 1, replacement);
      }
    }
    break;
  case mask_step::kind::index:
    if (node.is_array() && s.index < node.size()) {
      hit = mask_at(node[s.index], path, depth + 1, replacement);
    }
    break;
  case mask_step::kind::wildcard:
    if (node.is_object() || node.is_array()) {
      for (auto& child : node) {
        hit = mask_at(child, path, depth + 1, replacement) || hit;
      }
    }
    break;
  }
  return hit;
}

// Brackets inside strings do not count; a malformed payload may come out
// wrong here, but the parser rejects it afterwards anyway.
std::size_t nesting_depth(const std::string& text) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

} // namespace

payload_mask::payload_mask(std::vector<std::string> json_paths, const std::string& regex,
                           std::string replacement, unparsable_policy on_unparsable)
    : path_texts_(std::move(json_paths)), replacement_(std::move(replacement)),
      on_unparsable_(on_unparsable) {
  paths_.reserve(path_texts_.size());
  for (const auto& p : path_texts_) {
    paths_.push_back(parse_path(p));
  }
  if (!regex.empty()) {
    try {
      regex_.emplace(regex, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument("mask regex '" + regex + "': invalid: " + e.what());
    }
    // Such a pattern would splice the replacement between every character.
    if (std::regex_match(std::string{}, *regex_)) {
      throw std::invalid_argument("mask regex '" + regex + "': matches the empty string");
    }
  }
  for (char c : replacement_) {
    if (c == '$') {
      regex_format_ += '$';
    }
    regex_format_ += c;
  }
}

std::string payload_mask::redacted(const std::string& payload) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), digest);
  static const char hex[] = "0123456789abcdef";
  std::string out = "[redacted: not JSON, " + std::to_string(payload.size()) +
                    " bytes, sha256 ";
  for (unsigned char b : digest) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out + "]";
}

std::string payload_mask::apply(const std::string& payload) const {
  // Every failure path masks the whole payload: leaking it is the worse error.
  try {
    std::string text;
    bool masked = false;
    if (!paths_.empty()) {
      if (nesting_depth(payload) > max_json_depth) {
        return replacement_;
      }
      json doc = json::parse(payload, nullptr, false);
      if (doc.is_discarded()) {
        if (on_unparsable_ == unparsable_policy::redact) {
          return redacted(payload);
        }
        if (on_unparsable_ == unparsable_policy::keep && !regex_) {
          return payload;
        }
      } else {
        const json replacement = replacement_;
        for (const auto& path : paths_) {
          masked = mask_at(doc, path, 0, replacement) || masked;
        }
        if (masked) {
          text = doc.dump(-1, ' ', false, json::error_handler_t::replace);
        }
      }
    }
    if (!regex_) {
      return masked ? text : payload;
    }
    return std::regex_replace(masked ? text : payload, *regex_, regex_format_);
  } catch (...) {
    return replacement_;
  }
}

} // namespace mailroom
