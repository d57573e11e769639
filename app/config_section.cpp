#include "app/config_section.hpp"

#include <algorithm>
#include <limits>

#include "app/config_loader.hpp"

namespace mailroom {

namespace {

const toml::table empty_table;

} // namespace

key_list names_of(const std::vector<setting>& keys) {
  key_list out;
  for (const auto& k : keys) {
    out.push_back(k.name);
  }
  return out;
}

config_section::config_section(const toml::table* t, std::string path, const key_list& known,
                               const raw_overrides& raw)
    : t_(t != nullptr ? *t : empty_table), path_(std::move(path)), raw_(raw) {
  // Unknown keys are rejected before any value is read, so a typo is
  // reported as such rather than as a missing value's default applying.
  for (auto&& [k, v] : t_) {
    if (std::find(known.begin(), known.end(), k.str()) == known.end()) {
      throw config_error(join(path_, k.str()), unknown_key_problem(k.str(), known));
    }
  }
}

void config_section::fail(std::string_view name, const std::string& expected,
                          const std::string& got) const {
  throw config_error(path(name), "expected " + expected + ", got " + got);
}

const toml::table* config_section::table(std::string_view name) const {
  const auto* n = find(name);
  if (n == nullptr) {
    return nullptr;
  }
  if (!n->is_table()) {
    fail(name, "table", describe(*n));
  }
  return n->as_table();
}

void config_section::read(const setting& key, void* target) const {
  if (find(key.name) == nullptr) {
    return;
  }
  switch (key.type) {
  case setting_type::boolean: {
    bool v = false;
    boolean(key.name, v);
    key.set(target, v);
    break;
  }
  case setting_type::integer:
  case setting_type::duration: {
    std::uint64_t v = 0;
    integer(key.name, v, key.min, key.max, key.unit);
    key.set(target, v);
    break;
  }
  case setting_type::ratio: {
    double v = 0;
    ratio(key.name, v);
    key.set(target, v);
    break;
  }
  case setting_type::text: {
    std::string v;
    string(key.name, v);
    vet(key, v);
    key.set(target, std::move(v));
    break;
  }
  case setting_type::choice: {
    std::string v;
    string(key.name, v);
    key_list allowed(key.choices.begin(), key.choices.end());
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
      fail(key.name, one_of_text(allowed), shown_value(v));
    }
    key.set(target, std::move(v));
    break;
  }
  case setting_type::text_list: {
    std::vector<std::string> v;
    strings(key.name, v);
    for (const auto& e : v) {
      vet(key, e);
    }
    key.set(target, std::move(v));
    break;
  }
  case setting_type::text_table: {
    std::vector<std::pair<std::string, std::string>> v;
    string_table(key, v);
    key.set(target, std::move(v));
    break;
  }
  }
}

void config_section::vet(const setting& key, const std::string& value) const {
  if (!key.check) {
    return;
  }
  if (auto r = key.check(value)) {
    fail(key.name, r.expected,
         r.hide_value ? r.detail
                      : shown_value(value) + (r.detail.empty() ? "" : " (" + r.detail + ")"));
  }
}

void config_section::boolean(std::string_view name, bool& out) const {
  const auto* n = find(name);
  if (!n->is_boolean()) {
    fail(name, "boolean (true or false)", describe(*n));
  }
  out = n->as_boolean()->get();
}

void config_section::integer(std::string_view name, std::uint64_t& out, std::uint64_t min,
                             std::uint64_t max, const char* unit) const {
  const auto* n = find(name);
  std::string expected = "integer";
  max = std::min<std::uint64_t>(max, std::numeric_limits<std::int64_t>::max());
  if (max == static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    expected += " >= " + std::to_string(min);
  } else {
    expected += " in " + std::to_string(min) + ".." + std::to_string(max);
  }
  if (unit != nullptr) {
    expected += std::string(" (") + unit + ")";
  }
  if (!n->is_integer()) {
    fail(name, expected, describe(*n));
  }
  auto v = n->as_integer()->get();
  if (v < 0 || static_cast<std::uint64_t>(v) < min || static_cast<std::uint64_t>(v) > max) {
    fail(name, expected, std::to_string(v));
  }
  out = static_cast<std::uint64_t>(v);
}

void config_section::ratio(std::string_view name, double& out) const {
  const auto* n = find(name);
  const char* expected = "number in 0..1";
  double v = 0;
  if (n->is_floating_point()) {
    v = n->as_floating_point()->get();
  } else if (n->is_integer()) {
    v = static_cast<double>(n->as_integer()->get());
  } else {
    fail(name, expected, describe(*n));
  }
  if (!(v >= 0.0 && v <= 1.0)) {
    fail(name, expected, value_text(*n));
  }
  out = v;
}

void config_section::string(std::string_view name, std::string& out) const {
  const auto* n = find(name);
  if (n == nullptr) {
    return;
  }
  if (n->is_string()) {
    out = n->as_string()->get();
    return;
  }
  if (auto r = raw_.find(path(name)); r != raw_.end() && !n->is_table()) {
    out = r->second;
    return;
  }
  fail(name, "string", describe(*n));
}

void config_section::strings(std::string_view name, std::vector<std::string>& out) const {
  const auto* n = find(name);
  const char* expected = "array of strings";
  if (!n->is_array()) {
    fail(name, expected, describe(*n));
  }
  const auto& arr = *n->as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    if (!arr[i].is_string()) {
      fail(name, expected, describe(arr[i]) + " at index " + std::to_string(i));
    }
    out.push_back(arr[i].as_string()->get());
  }
}

void config_section::string_table(const setting& key,
                                  std::vector<std::pair<std::string, std::string>>& out) const {
  const auto* t = table(key.name);
  std::string table_path = path(key.name);
  for (auto&& [k, v] : *t) {
    std::string name(k.str());
    if (key.check) {
      if (auto r = key.check(name)) {
        throw config_error(join(table_path, name),
                           "expected " + r.expected + ", got " + toml_quoted(name));
      }
    }
    // Numbers and booleans are taken as their text: librdkafka properties
    // are strings, and `session.timeout.ms = 6000` is what people write.
    if (v.is_integer()) {
      out.emplace_back(name, std::to_string(v.as_integer()->get()));
      continue;
    }
    if (v.is_boolean()) {
      out.emplace_back(name, v.as_boolean()->get() ? "true" : "false");
      continue;
    }
    if (!v.is_string() || v.as_string()->get().find('\0') != std::string::npos) {
      throw config_error(join(table_path, name),
                         "expected string without NUL, got " + describe(v));
    }
    out.emplace_back(name, v.as_string()->get());
  }
  std::sort(out.begin(), out.end());
}

} // namespace mailroom
