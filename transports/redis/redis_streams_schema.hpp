#pragma once

#include <vector>

#include "core/engine_config.hpp"
#include "core/settings_schema.hpp"
#include "transports/redis/redis_streams_settings.hpp"

namespace mailroom {

/// Returns the keys of [transport.redis] (the connection comes from [redis],
/// the dead-letter mask from [dead_letter]).
const settings_schema<redis_streams_settings>& redis_streams_schema();

/// Returns the problems of `s` as the selected transport of an engine with
/// `engine`: the stream is required, idle and delivery limits must fit the
/// handler timeout and the retry budget, its own keys must not be the stream.
std::vector<setting_problem> redis_streams_problems(const redis_streams_settings& s,
                                                    const engine_config& engine);

} // namespace mailroom
