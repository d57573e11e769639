#include "core/instance_name.hpp"

#include <cstdio>
#include <random>

#include <unistd.h>

namespace mailroom {

std::string instance_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "%s", "host");
  }
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(rd()));
  return std::string{host} + "-" + std::to_string(::getpid()) + "-" + suffix;
}

} // namespace mailroom
