#pragma once

// Settings declared once. Beside each settings struct, one declaration per
// key says its name, the member it fills, its bounds or allowed values, its
// one-line documentation and whether it holds a secret — in the spirit of
// CAF's `opt_group{...}.add<T>(name, doc)`. The configuration loader
// (app/) reads, validates, rejects unknown keys and renders from these
// declarations; nothing here knows TOML.

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mailroom {

/// What a setting holds, which decides how it is read and written.
enum class setting_type {
  boolean,     ///< true or false.
  integer,     ///< An unsigned integer within bounds.
  duration,    ///< An integer count of `unit` (ms, us) within bounds.
  ratio,       ///< A number in 0..1.
  text,        ///< A string, optionally checked.
  choice,      ///< One of a list of names.
  text_list,   ///< An array of strings.
  text_table,  ///< A table of string values (name = "value").
};

/// A setting's value as the loader reads it and the renderer writes it: the
/// member of its type is the one that counts. (A plain struct rather than a
/// std::variant: GCC 12 reports false -Wmaybe-uninitialized warnings in
/// every file declaring a schema with the variant.)
struct setting_value {
  bool flag = false;                                        ///< boolean
  std::uint64_t number = 0;                                 ///< integer, duration
  double ratio = 0;                                         ///< ratio
  std::string text;                                         ///< text, choice
  std::vector<std::string> list;                            ///< text_list
  std::vector<std::pair<std::string, std::string>> table;  ///< text_table

  setting_value() = default;
  setting_value(bool v) : flag(v) {}
  setting_value(std::uint64_t v) : number(v) {}
  setting_value(double v) : ratio(v) {}
  setting_value(std::string v) : text(std::move(v)) {}
  setting_value(std::vector<std::string> v) : list(std::move(v)) {}
  setting_value(std::vector<std::pair<std::string, std::string>> v) : table(std::move(v)) {}

  /// Returns the member that holds a `T`.
  template <class T> T& as() {
    if constexpr (std::is_same_v<T, bool>) {
      return flag;
    } else if constexpr (std::is_same_v<T, std::uint64_t>) {
      return number;
    } else if constexpr (std::is_same_v<T, double>) {
      return ratio;
    } else if constexpr (std::is_same_v<T, std::string>) {
      return text;
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      return list;
    } else {
      return table;
    }
  }
};

/// Why a text value is not acceptable; an empty `expected` accepts it.
struct setting_rejection {
  std::string expected; ///< What was expected ("a non-empty stream name").
  std::string detail;   ///< Why, appended to the value: `"x" (detail)`.
  /// Do not echo the value (it may be a secret pasted in the wrong key):
  /// `detail` is shown instead.
  bool hide_value = false;

  /// Returns true when the value was rejected.
  explicit operator bool() const { return !expected.empty(); }
};

/// Vets a text value (or a list element, or a table entry's name).
using text_check = std::function<setting_rejection(const std::string& value)>;

/// Returns a check accepting any text without a NUL byte, and, with
/// `required`, not empty; `expected` words what was expected.
inline text_check plain_text(std::string expected, bool required = false) {
  return [expected = std::move(expected), required](const std::string& v) {
    bool bad = v.find('\0') != std::string::npos || (required && v.empty());
    return bad ? setting_rejection{expected, {}, false} : setting_rejection{};
  };
}

/// One key of a settings section.
struct setting {
  std::string name;           ///< Key name within its section.
  std::string doc;            ///< One line of documentation.
  setting_type type = setting_type::text;
  std::uint64_t min = 0;      ///< Bounds of integer and duration settings.
  std::uint64_t max = std::numeric_limits<std::int64_t>::max();
  const char* unit = nullptr; ///< "milliseconds", "microseconds", "bytes", ...
  std::vector<std::string> choices; ///< Names of a choice setting, in order.
  /// Rendered as "<redacted>" by `validate` and never logged.
  bool secret = false;
  /// For text settings, list elements and table names: vets the value.
  text_check check;
  /// Stores `v` into the section struct at `section`.
  std::function<void(void* section, setting_value v)> set;
  /// Returns the value of the section struct at `section`.
  std::function<setting_value(const void* section)> get;
};

/// Why a rule between keys failed: the key it is about, what was expected
/// and what was found (the loader words it "KEY: expected …, got …").
struct setting_problem {
  std::string key;      ///< Dotted key, relative to the section ("cap_ms").
  std::string expected; ///< What was expected.
  std::string got;      ///< What was found.
};

/// The keys of one settings struct `S`, and the rules between them.
template <class S> class settings_schema {
public:
  /// A rule over the whole struct: returns a problem, or none.
  using rule_fn = std::function<std::vector<setting_problem>(const S&)>;

  /// Declares a boolean key.
  settings_schema& boolean(std::string name, bool S::*member, std::string doc) {
    return add(std::move(name), std::move(doc), setting_type::boolean, member);
  }

  /// Declares an unsigned integer key within `min..max`.
  template <class T>
  settings_schema& integer(std::string name, T S::*member, std::uint64_t min,
                           std::uint64_t max, std::string doc, const char* unit = nullptr) {
    static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
    auto& s = add_raw(std::move(name), std::move(doc), setting_type::integer);
    s.min = min;
    s.max = std::min<std::uint64_t>(max, std::numeric_limits<T>::max());
    s.unit = unit;
    s.set = [member](void* p, setting_value v) {
      static_cast<S*>(p)->*member = static_cast<T>(v.number);
    };
    s.get = [member](const void* p) -> setting_value {
      return static_cast<std::uint64_t>(static_cast<const S*>(p)->*member);
    };
    return *this;
  }

  /// Declares a duration key: an integer count of `Unit` (milliseconds by
  /// default) of at least `min`, at most 2^32 - 1 (so that adding one to a
  /// time point can never overflow).
  template <class Unit = std::chrono::milliseconds, class D>
  settings_schema& duration(std::string name, D S::*member, std::uint64_t min,
                            std::string doc) {
    auto& s = add_raw(std::move(name), std::move(doc), setting_type::duration);
    s.min = min;
    s.max = std::numeric_limits<std::uint32_t>::max();
    s.unit = std::is_same_v<Unit, std::chrono::microseconds> ? "microseconds" : "milliseconds";
    s.set = [member](void* p, setting_value v) {
      static_cast<S*>(p)->*member = std::chrono::duration_cast<D>(
          Unit(static_cast<typename Unit::rep>(v.number)));
    };
    s.get = [member](const void* p) -> setting_value {
      return static_cast<std::uint64_t>(
          std::chrono::duration_cast<Unit>(static_cast<const S*>(p)->*member).count());
    };
    return *this;
  }

  /// Declares a number in 0..1.
  settings_schema& ratio(std::string name, double S::*member, std::string doc) {
    return add(std::move(name), std::move(doc), setting_type::ratio, member);
  }

  /// Declares a string key; `check` (optional) vets its value.
  settings_schema& text(std::string name, std::string S::*member, std::string doc,
                        text_check check = {}) {
    add(std::move(name), std::move(doc), setting_type::text, member);
    keys_.back().check = std::move(check);
    return *this;
  }

  /// Declares a key naming one of `names`, stored as the matching value.
  template <class E>
  settings_schema& choice(std::string name, E S::*member,
                          std::vector<std::pair<std::string, E>> names, std::string doc) {
    auto& s = add_raw(std::move(name), std::move(doc), setting_type::choice);
    for (auto& n : names) {
      s.choices.push_back(n.first);
    }
    s.set = [member, names](void* p, setting_value v) {
      for (auto& n : names) {
        if (n.first == v.text) {
          static_cast<S*>(p)->*member = n.second;
        }
      }
    };
    s.get = [member, names](const void* p) -> setting_value {
      for (auto& n : names) {
        if (n.second == static_cast<const S*>(p)->*member) {
          return n.first;
        }
      }
      return std::string{"unknown"};
    };
    return *this;
  }

  /// Declares a string key holding one of `names` as it is.
  settings_schema& choice(std::string name, std::string S::*member,
                          std::vector<std::string> names, std::string doc) {
    add(std::move(name), std::move(doc), setting_type::choice, member);
    keys_.back().choices = std::move(names);
    return *this;
  }

  /// Declares an array of strings; `check` (optional) vets each element.
  settings_schema& texts(std::string name, std::vector<std::string> S::*member,
                         std::string doc, text_check check = {}) {
    add(std::move(name), std::move(doc), setting_type::text_list, member);
    keys_.back().check = std::move(check);
    return *this;
  }

  /// Declares a table of string values, kept as (name, value) pairs sorted
  /// by name; `check` vets each name.
  settings_schema& text_table(std::string name,
                              std::vector<std::pair<std::string, std::string>> S::*member,
                              std::string doc, text_check check = {}) {
    add(std::move(name), std::move(doc), setting_type::text_table, member);
    keys_.back().check = std::move(check);
    return *this;
  }

  /// Marks the key declared last as holding a secret.
  settings_schema& secret() {
    keys_.back().secret = true;
    return *this;
  }

  /// Adds a rule between keys of the struct, checked after every key is read.
  settings_schema& rule(rule_fn r) {
    rules_.push_back(std::move(r));
    return *this;
  }

  /// Returns the declared keys, in declaration order.
  const std::vector<setting>& keys() const { return keys_; }

  /// Returns the problems the rules find in `s`.
  std::vector<setting_problem> check(const S& s) const {
    std::vector<setting_problem> out;
    for (const auto& r : rules_) {
      auto found = r(s);
      out.insert(out.end(), found.begin(), found.end());
    }
    return out;
  }

private:
  setting& add_raw(std::string name, std::string doc, setting_type type) {
    setting s;
    s.name = std::move(name);
    s.doc = std::move(doc);
    s.type = type;
    keys_.push_back(std::move(s));
    return keys_.back();
  }

  template <class T>
  settings_schema& add(std::string name, std::string doc, setting_type type, T S::*member) {
    auto& s = add_raw(std::move(name), std::move(doc), type);
    s.set = [member](void* p, setting_value v) {
      static_cast<S*>(p)->*member = std::move(v.template as<T>());
    };
    s.get = [member](const void* p) -> setting_value {
      return static_cast<const S*>(p)->*member;
    };
    return *this;
  }

  std::vector<setting> keys_;
  std::vector<rule_fn> rules_;
};

/// Returns `s` as a TOML basic string: quoted, with quotes, backslashes and
/// control characters escaped.
std::string toml_quoted(std::string_view s);

/// Returns `s` cut to 80 bytes with "..." appended when longer (for values
/// echoed in error messages).
std::string truncated(std::string s);

/// Returns `d` as TOML writes a float: the shortest text that reads back as
/// `d`, with a ".0" when it would look like an integer.
std::string format_number(double d);

/// Returns a value for an error message: toml_quoted and truncated.
inline std::string shown_value(std::string_view s) {
  return truncated(toml_quoted(s));
}

/// Returns the problem of a timeout that must outlive the handler call:
/// `value` (of key `key`) not above `handler_timeout`, with `why` saying
/// what would break; none when it is above.
inline std::vector<setting_problem>
must_outlive_handler(const std::string& key, std::chrono::milliseconds value,
                     std::chrono::milliseconds handler_timeout, const std::string& why) {
  if (value > handler_timeout) {
    return {};
  }
  return {{key,
           "more than engine.handler_timeout_ms (" + std::to_string(handler_timeout.count()) +
               ") " + why,
           std::to_string(value.count())}};
}

} // namespace mailroom
