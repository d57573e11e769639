#include "transports/redis/redis_streams_settings.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <stdexcept>

#include <unistd.h>

namespace mailroom {

std::string default_consumer_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "%s", "host");
  }
  // The random part keeps two instances apart even when a container reuses
  // the same hostname and pid after a restart.
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(rd()));
  return std::string{host} + "-" + std::to_string(::getpid()) + "-" + suffix;
}

redis_streams_settings resolve_defaults(redis_streams_settings s) {
  if (s.stream.empty()) {
    throw std::invalid_argument("redis streams transport: stream must not be empty");
  }
  if (s.group.empty()) {
    throw std::invalid_argument("redis streams transport: group must not be empty");
  }
  if (s.consumer.empty()) {
    s.consumer = default_consumer_name();
  }
  if (s.topic.empty()) {
    s.topic = s.stream;
  }
  if (s.dlq_stream.empty()) {
    s.dlq_stream = s.stream + ":dlq";
  }
  if (s.retry_zset.empty()) {
    s.retry_zset = s.stream + ":retry";
  }
  if (s.errors_hash.empty()) {
    s.errors_hash = s.stream + ":errors";
  }
  if (s.group_start_id.empty()) {
    s.group_start_id = "0";
  }
  using std::chrono::milliseconds;
  s.min_idle = std::max(s.min_idle, milliseconds{1});
  s.block = std::max(s.block, milliseconds{0});
  if (s.recovery_interval <= milliseconds{0}) {
    s.recovery_interval = std::clamp(s.min_idle / 2, milliseconds{1}, milliseconds{5000});
  }
  return s;
}

} // namespace mailroom
