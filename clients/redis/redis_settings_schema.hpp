#pragma once

#include "clients/redis/redis_settings.hpp"
#include "core/settings_schema.hpp"

namespace mailroom {

/// Returns the keys of [redis], the server of every Redis store and of the
/// Redis Streams transport (the reconnect backoff is not configurable).
const settings_schema<redis_settings>& redis_settings_schema();

} // namespace mailroom
