#pragma once

#include <nlohmann/json.hpp>

namespace mailroom::bench {

/// Describes the machine and build a run happened on: nproc, CPU model
/// (/proc/cpuinfo), memory, kernel, load average, UTC date, CAF version,
/// compiler, build type and the source tree's git commit (with a dirty flag).
nlohmann::json machine_info();

} // namespace mailroom::bench
