#pragma once

#include <vector>

#include "core/engine_config.hpp"
#include "core/settings_schema.hpp"
#include "transports/sqs/sqs_transport_settings.hpp"

namespace mailroom {

/// Returns the keys of [transport.sqs].
const settings_schema<sqs_transport_settings>& sqs_transport_schema();

/// Returns the problems of `s` as the selected transport of an engine with
/// `engine`: a queue (URL or name) is required, a region must be known, the
/// dead-letter queue differs from the queue, heartbeats fit the visibility
/// timeout three times, and the receive limit leaves the retry budget room
/// (and, with a Redis dedupe store, room for the hand-backs of a message
/// whose key a dead consumer still claims).
std::vector<setting_problem> sqs_transport_problems(const sqs_transport_settings& s,
                                                    const engine_config& engine);

} // namespace mailroom
