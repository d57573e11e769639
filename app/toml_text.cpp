#include "app/toml_text.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "core/settings_schema.hpp"

namespace mailroom {

namespace {

bool is_bare_key(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] =
          std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The word of `known` within typo distance of `word`, or empty.
template <class Words> std::string_view closest(std::string_view word, const Words& known) {
  std::string_view best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& k : known) {
    auto d = edit_distance(word, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  return best;
}

} // namespace

std::string closest_of(std::string_view word, const key_list& known) {
  return std::string{closest(word, known)};
}

std::string key_text(std::string_view s) {
  return is_bare_key(s) ? std::string(s) : toml_quoted(s);
}

std::string join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? key_text(name) : prefix + "." + key_text(name);
}

std::string value_text(const toml::node& n) {
  if (auto* s = n.as_string()) {
    return truncated(toml_quoted(s->get()));
  }
  if (auto* i = n.as_integer()) {
    return std::to_string(i->get());
  }
  if (auto* f = n.as_floating_point()) {
    return format_number(f->get());
  }
  if (auto* b = n.as_boolean()) {
    return b->get() ? "true" : "false";
  }
  if (auto* a = n.as_array()) {
    std::string s = "[";
    for (std::size_t i = 0; i < a->size(); ++i) {
      s += (i == 0 ? "" : ", ") + value_text((*a)[i]);
    }
    return truncated(s + "]");
  }
  if (n.is_table()) {
    return "{...}";
  }
  std::ostringstream os;
  n.visit([&](auto&& v) { os << v; });
  return truncated(os.str());
}

std::string describe(const toml::node& n) {
  switch (n.type()) {
  case toml::node_type::string:
    return "string " + value_text(n);
  case toml::node_type::integer:
    return "integer " + value_text(n);
  case toml::node_type::floating_point:
    return "floating-point " + value_text(n);
  case toml::node_type::boolean:
    return "boolean " + value_text(n);
  case toml::node_type::array:
    return "array " + value_text(n);
  case toml::node_type::table:
    return "table";
  case toml::node_type::date:
    return "date " + value_text(n);
  case toml::node_type::time:
    return "time " + value_text(n);
  case toml::node_type::date_time:
    return "date-time " + value_text(n);
  default:
    return "nothing";
  }
}

std::string unknown_key_problem(std::string_view name, const key_list& known) {
  auto best = closest(name, known);
  if (!best.empty()) {
    return "unknown key (did you mean \"" + std::string(best) + "\"?)";
  }
  std::string list;
  for (auto k : known) {
    list += (list.empty() ? "" : ", ") + std::string(k);
  }
  return "unknown key (known keys: " + list + ")";
}

std::string one_of_text(const key_list& allowed) {
  std::string s = allowed.size() == 1 ? "" : "one of ";
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    s += (i == 0 ? "" : ", ") + toml_quoted(allowed[i]);
  }
  return s;
}

} // namespace mailroom
