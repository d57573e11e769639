#include "transports/kafka/kafka_settings.hpp"

namespace mailroom {

std::string dlq_topic_for(const kafka_settings& s, const std::string& topic) {
  return s.dlq_topic.empty() ? topic + ".dlq" : s.dlq_topic;
}

} // namespace mailroom
