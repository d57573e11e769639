#pragma once

#include "app/app_config.hpp"

namespace mailroom {

/// Runs the engine described by `cfg` until it stops; returns the process exit code.
int run_app(const app_config& cfg);

} // namespace mailroom
