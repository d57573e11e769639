#pragma once

// Writing a configuration back as TOML (`mailroom validate`): every declared
// key with its value in effect, secrets redacted, in the form the loader
// reads back.

#include <sstream>
#include <string>
#include <vector>

#include "core/settings_schema.hpp"

namespace mailroom {

/// Builds the TOML text of a configuration, one table at a time.
class config_renderer {
public:
  /// Starts table `[path]`.
  void table(const std::string& path);

  /// Writes a comment line (control characters replaced).
  void comment(const std::string& text);

  /// Writes `key` with its value in the struct at `source`: "<redacted>"
  /// for secrets; a table's values whose names look secret are redacted too.
  void key(const setting& key, const void* source);

  /// Writes every key of `keys`.
  void keys(const std::vector<setting>& keys, const void* source) {
    for (const auto& k : keys) {
      key(k, source);
    }
  }

  /// Returns the text so far.
  std::string str() const { return out_.str(); }

private:
  std::ostringstream out_;
  bool first_ = true;
};

} // namespace mailroom
