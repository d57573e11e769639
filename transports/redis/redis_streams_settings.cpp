#include "transports/redis/redis_streams_settings.hpp"

#include "core/instance_name.hpp"

#include <algorithm>
#include <stdexcept>

namespace mailroom {

std::string default_consumer_name() {
  return instance_name();
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
