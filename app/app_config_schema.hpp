#pragma once

// The keys of the command's own sections, declared once: [log], [source]
// (with the generator's keys), [handler] / [handlers.<topic>] and
// [progress].

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "app/app_config.hpp"
#include "core/settings_schema.hpp"

namespace mailroom {

/// Returns the keys of [log].
const settings_schema<log_settings>& log_schema();

/// Returns the keys of [progress].
const settings_schema<progress_settings>& progress_schema();

/// Returns the keys of [http].
const settings_schema<http_settings>& http_schema();

/// Splits "host:port" into its parts; nullopt when it is not one (a host,
/// a colon, a port 0..65535).
std::optional<std::pair<std::string, int>> split_listen_address(const std::string& text);

/// Returns the keys of [handler] and of each [handlers.<topic>].
const settings_schema<handler_spec>& handler_schema();

/// Returns `source.type`.
const settings_schema<source_settings>& source_schema();

/// Returns the generator's keys, which live in [source] too.
const settings_schema<generator_settings>& generator_schema();

} // namespace mailroom
