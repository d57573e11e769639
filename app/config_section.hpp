#pragma once

// One table of the configuration as the loader reads it: unknown keys are
// rejected up front (with a "did you mean"), and each declared setting is
// read with the type, bounds and checks its declaration gives. Every message
// names the dotted key and says what was expected and what was found.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "app/toml_text.hpp"
#include "core/settings_schema.hpp"

namespace mailroom {

/// Raw text of --set values by dotted key, so a key expecting a string still
/// takes a value that happened to parse as another TOML type.
using raw_overrides = std::map<std::string, std::string>;

/// One table being read.
class config_section {
public:
  /// Reads table `t` (null: absent, empty) at dotted `path`; throws
  /// config_error for a key not in `known`.
  config_section(const toml::table* t, std::string path, const key_list& known,
                 const raw_overrides& raw);

  /// Returns the node of `name`, or null.
  const toml::node* find(std::string_view name) const { return t_.get(name); }

  /// Returns the dotted path of `name`.
  std::string path(std::string_view name) const { return join(path_, name); }

  /// Throws "PATH.NAME: expected EXPECTED, got GOT".
  [[noreturn]] void fail(std::string_view name, const std::string& expected,
                         const std::string& got) const;

  /// Returns the sub-table `name`, or null when absent; throws when `name`
  /// is not a table.
  const toml::table* table(std::string_view name) const;

  /// Reads `key` into the struct at `target`, if the key is present.
  void read(const setting& key, void* target) const;

  /// Reads every key of `keys` into `target`.
  void read_all(const std::vector<setting>& keys, void* target) const {
    for (const auto& k : keys) {
      read(k, target);
    }
  }

  /// Reads the string `name` into `out` (a --set value of another type is
  /// taken as its text), if present.
  void string(std::string_view name, std::string& out) const;

private:
  void boolean(std::string_view name, bool& out) const;
  void integer(std::string_view name, std::uint64_t& out, std::uint64_t min,
               std::uint64_t max, const char* unit) const;
  void ratio(std::string_view name, double& out) const;
  void strings(std::string_view name, std::vector<std::string>& out) const;
  void string_table(const setting& key,
                    std::vector<std::pair<std::string, std::string>>& out) const;
  void vet(const setting& key, const std::string& value) const;

  const toml::table& t_;
  std::string path_;
  const raw_overrides& raw_;
};

/// Returns the names of `keys`.
key_list names_of(const std::vector<setting>& keys);

} // namespace mailroom
