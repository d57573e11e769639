#pragma once

#include "app/transport_registry.hpp"

namespace mailroom {

/// Runs the `mailroom` command line (`run`, `validate`, `version`) with the
/// transports of `registry`; returns the process exit code: 0 done, 1 a
/// runtime failure, 2 bad usage or configuration. A program that adds a
/// transport of its own registers it and calls this.
int run_cli(int argc, char** argv, const transport_registry& registry);

} // namespace mailroom
