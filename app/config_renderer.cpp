#include "app/config_renderer.hpp"

#include <algorithm>

#include "app/config_loader.hpp"
#include "app/toml_text.hpp"

namespace mailroom {

namespace {

const std::string redacted = toml_quoted("<redacted>");

std::string list_text(const std::vector<std::string>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    s += (i == 0 ? "" : ", ") + toml_quoted(v[i]);
  }
  return s + "]";
}

std::string table_text(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string s = "{";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& [name, value] = entries[i];
    s += (i == 0 ? " " : ", ") + key_text(name) + " = " +
         (is_secret_key(name) ? redacted : toml_quoted(value));
  }
  return s + (entries.empty() ? "}" : " }");
}

std::string value_of(const setting& key, setting_value v) {
  switch (key.type) {
  case setting_type::boolean:
    return v.flag ? "true" : "false";
  case setting_type::integer:
  case setting_type::duration:
    return std::to_string(v.number);
  case setting_type::ratio:
    return format_number(v.ratio);
  case setting_type::text:
  case setting_type::choice:
    return toml_quoted(v.text);
  case setting_type::text_list:
    return list_text(v.list);
  case setting_type::text_table:
    return table_text(v.table);
  }
  return "\"\"";
}

} // namespace

void config_renderer::table(const std::string& path) {
  out_ << (first_ ? "" : "\n") << "[" << path << "]\n";
  first_ = false;
}

void config_renderer::comment(const std::string& text) {
  std::string clean = text;
  std::replace_if(
      clean.begin(), clean.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; },
      ' ');
  out_ << "# " << clean << "\n";
}

void config_renderer::key(const setting& key, const void* source) {
  out_ << key_text(key.name) << " = "
       << (key.secret ? redacted : value_of(key, key.get(source))) << "\n";
}

} // namespace mailroom
