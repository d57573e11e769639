#include "app/redis_probe.hpp"

#include <stdexcept>

namespace mailroom {

void check_redis(redis_connection& connection) {
  auto r = connection.connect();
  if (r) {
    return;
  }
  const auto& s = connection.settings();
  auto where = s.host + ":" + std::to_string(s.port);
  // The connection's texts start with "redis host:port: "; drop the repeat.
  auto why = r.what;
  if (auto prefix = "redis " + where + ": "; why.rfind(prefix, 0) == 0) {
    why.erase(0, prefix.size());
  }
  if (r.failure == failure_class::transient) {
    throw std::runtime_error("cannot reach Redis at " + where + ": " + why);
  }
  throw std::runtime_error("Redis at " + where + " refused the connection: " + why);
}

std::string redis_description(const redis_settings& s) {
  return s.host + ":" + std::to_string(s.port) + " db " + std::to_string(s.db) +
         ", key prefix \"" + s.key_prefix + "\"";
}

} // namespace mailroom
