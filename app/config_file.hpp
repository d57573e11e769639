#pragma once

// Reading a configuration file, and applying `--set section.key=value`
// overrides onto it before it is validated.

#include <string>

#include <toml++/toml.h>

#include "app/config_section.hpp"

namespace mailroom {

/// Parses the TOML file at `path`. Throws config_error naming the path (it
/// is missing, a directory, unreadable) or the line and column of a syntax
/// error.
toml::table parse_file(const std::string& path);

/// Applies one "section.key=value" override to `root`: the value is parsed
/// as TOML, else taken as a plain string; its raw text is kept in `raw` for
/// keys that expect strings. Throws config_error naming the override when
/// it is malformed.
void apply_override(toml::table& root, const std::string& text, raw_overrides& raw);

} // namespace mailroom
