#pragma once

// The keys of the engine's settings sections, declared once (see
// core/settings_schema.hpp): [engine], [retry], [dedupe], [sweeper] and
// [dead_letter], and the names of their enumerations.

#include <string>
#include <utility>
#include <vector>

#include "core/engine_config.hpp"
#include "core/settings_schema.hpp"

namespace mailroom {

/// Returns the names of the ordering modes, as the configuration spells them.
const std::vector<std::pair<std::string, ordering_mode>>& ordering_names();

/// Returns the configuration's name of `m` ("per_key").
std::string to_string(ordering_mode m);

/// Returns the keys of [engine].
const settings_schema<engine_settings>& engine_settings_schema();

/// Returns the keys of [retry].
const settings_schema<retry_settings>& retry_settings_schema();

/// Returns the keys of [dedupe] that the engine reads (the store kind is the
/// command's).
const settings_schema<dedupe_settings>& dedupe_settings_schema();

/// Returns the keys of [sweeper] that the engine reads.
const settings_schema<sweeper_settings>& sweeper_settings_schema();

/// Returns the keys of [dead_letter].
const settings_schema<dead_letter_settings>& dead_letter_settings_schema();

/// Returns the problems of rules between sections of `cfg`: timeouts that
/// must outlive a handler call.
std::vector<setting_problem> engine_config_problems(const engine_config& cfg);

} // namespace mailroom
