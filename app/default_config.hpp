#pragma once

#include <string>
#include <vector>

namespace mailroom {

/// Returns the places a configuration is looked for when `--config` is not
/// given, in order: `default.toml` and `config/default.toml` beside the
/// binary, `../config/default.toml` (a build directory inside the source
/// tree), `../share/mailroom/default.toml` (an installed binary) and
/// `/etc/mailroom/mailroom.toml`.
std::vector<std::string> default_config_candidates();

/// Returns the first candidate that exists. Throws config_error listing
/// every place looked at when none does.
std::string find_default_config(const char* argv0);

} // namespace mailroom
