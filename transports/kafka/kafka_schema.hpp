#pragma once

#include <vector>

#include "core/engine_config.hpp"
#include "core/settings_schema.hpp"
#include "transports/kafka/kafka_settings.hpp"

namespace mailroom {

/// Returns the keys of [transport.kafka] (and its [transport.kafka.properties]
/// table, passed to librdkafka).
const settings_schema<kafka_settings>& kafka_schema();

/// Returns the problems of `s` as the selected transport of an engine with
/// `engine`: brokers and topics are required, librdkafka must accept every
/// property, the delivery limit must leave the retry budget room, the
/// revocation wait must fit librdkafka's poll interval, and engine.ordering
/// must agree with the transport's.
std::vector<setting_problem> kafka_problems(const kafka_settings& s,
                                            const engine_config& engine);

} // namespace mailroom
