#pragma once

#include <string>

namespace mailroom {

/// Returns "mailroom <version>", plus the `git describe` of the build when it
/// was built from a clone ("mailroom 0.1.0 (9485c42-dirty)").
std::string version_text();

} // namespace mailroom
