#pragma once

// The keys of the command's own sections, declared once: [log], [source]
// (with the generator's keys), [handler] / [handlers.<topic>] and
// [progress].

#include <vector>

#include "app/app_config.hpp"
#include "core/settings_schema.hpp"

namespace mailroom {

/// Returns the keys of [log].
const settings_schema<log_settings>& log_schema();

/// Returns the keys of [progress].
const settings_schema<progress_settings>& progress_schema();

/// Returns the keys of [handler] and of each [handlers.<topic>].
const settings_schema<handler_spec>& handler_schema();

/// Returns `source.type`.
const settings_schema<source_settings>& source_schema();

/// Returns the generator's keys, which live in [source] too.
const settings_schema<generator_settings>& generator_schema();

} // namespace mailroom
