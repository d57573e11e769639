#pragma once

#include <string>

namespace mailroom {

/// Returns a name unique to this process instance: `<hostname>-<pid>-<8
/// hex>`. The random part keeps two instances apart even when a container
/// reuses the same hostname and pid after a restart; every call draws anew.
std::string instance_name();

} // namespace mailroom
