#pragma once

#include "core/settings_schema.hpp"
#include "transports/memory/memory_transport.hpp"

namespace mailroom {

/// Returns the keys of [transport.memory].
const settings_schema<memory_transport_settings>& memory_transport_schema();

} // namespace mailroom
