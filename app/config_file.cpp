#include "app/config_file.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "app/config_loader.hpp"

namespace mailroom {

namespace {

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) {
    return {};
  }
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

[[noreturn]] void bad_override(const std::string& text, const std::string& got) {
  throw config_error(
      text, "expected --set KEY=VALUE (for example engine.workers=8), got " + got);
}

std::vector<std::string> split_key(const std::string& key, const std::string& text) {
  std::vector<std::string> segs;
  std::string cur;
  bool quoted_seg = false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c == '"' || c == '\'') {
      auto end = key.find(c, i + 1);
      if (end == std::string::npos) {
        bad_override(text, "an unterminated quote");
      }
      cur += key.substr(i + 1, end - i - 1);
      quoted_seg = true;
      i = end;
    } else if (c == '.') {
      if (trim(cur).empty() && !quoted_seg) {
        bad_override(text, "an empty key segment");
      }
      segs.push_back(quoted_seg ? cur : trim(cur));
      cur.clear();
      quoted_seg = false;
    } else {
      cur += c;
    }
  }
  if (trim(cur).empty() && !quoted_seg) {
    bad_override(text, key.empty() ? "an empty key" : "an empty key segment");
  }
  segs.push_back(quoted_seg ? cur : trim(cur));
  return segs;
}

std::size_t find_equals(const std::string& s) {
  char quote_char = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (quote_char != 0) {
      if (s[i] == quote_char) {
        quote_char = 0;
      }
    } else if (s[i] == '"' || s[i] == '\'') {
      quote_char = s[i];
    } else if (s[i] == '=') {
      return i;
    }
  }
  return std::string::npos;
}

} // namespace

void apply_override(toml::table& root, const std::string& text, raw_overrides& raw) {
  auto eq = find_equals(text);
  if (eq == std::string::npos) {
    bad_override(text, "no '='");
  }
  std::string key = trim(std::string_view(text).substr(0, eq));
  std::string value = trim(std::string_view(text).substr(eq + 1));
  auto segs = split_key(key, text);

  toml::table* t = &root;
  std::string path;
  for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
    path = join(path, segs[i]);
    auto* n = t->get(segs[i]);
    if (n == nullptr) {
      n = t->insert(segs[i], toml::table{}).first->second.as_table();
    }
    if (!n->is_table()) {
      throw config_error(path, "expected table, got " + describe(*n) + " (from --set " +
                                   toml_quoted(text) + ")");
    }
    t = n->as_table();
  }
  const std::string& last = segs.back();
  path = join(path, last);

  std::optional<toml::table> parsed;
  try {
    parsed = toml::parse(std::string_view("v = " + value), std::string_view("--set"));
  } catch (const toml::parse_error&) {
    parsed.reset();
  }
  if (parsed && parsed->size() == 1 && parsed->contains("v")) {
    parsed->get("v")->visit([&](auto&& v) { t->insert_or_assign(last, std::move(v)); });
    raw[path] = value;
  } else {
    t->insert_or_assign(last, value);
    raw.erase(path);
  }
}

toml::table parse_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw config_error("", "cannot read config file " + toml_quoted(path) + ": is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw config_error("", "cannot read config file " + toml_quoted(path) + ": " +
                               std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw config_error("", "cannot read config file " + toml_quoted(path));
  }
  try {
    return toml::parse(std::string_view(text.str()), std::string_view(path));
  } catch (const toml::parse_error& e) {
    throw config_error("", "syntax error in " + path + " at line " +
                               std::to_string(e.source().begin.line) + ", column " +
                               std::to_string(e.source().begin.column) + ": " +
                               std::string(e.description()));
  }
}

} // namespace mailroom
