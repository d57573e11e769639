#pragma once

// The librdkafka configuration of a consumer or producer: the properties
// mailroom sets itself, then the user's `[transport.kafka.properties]`,
// checked by librdkafka itself (rd_kafka_conf_set names what it rejects).

#include <string>
#include <utility>
#include <vector>

#include "core/settings_schema.hpp"
#include "transports/kafka/kafka_handles.hpp"
#include "transports/kafka/kafka_settings.hpp"

namespace mailroom::kafka {

/// (property, value) pairs, in the order they are set.
using property_list = std::vector<std::pair<std::string, std::string>>;

/// Returns true when the value of `name` must never be shown (passwords,
/// secrets, private keys, JAAS and OAUTHBEARER configurations).
bool is_secret_property(const std::string& name);

/// Returns the consumer's properties: mailroom's own (bootstrap.servers,
/// group.id, client.id, auto.offset.reset, no auto commit, no auto offset
/// store), then the user's. Values "env:NAME" are kept as written.
property_list consumer_properties(const kafka_settings& s);

/// Returns the dead-letter producer's properties: bootstrap.servers,
/// client.id, idempotence, then the user's properties that a producer takes.
property_list producer_properties(const kafka_settings& s);

/// Returns `props` for display: secret values redacted, "env:NAME" shown as is.
property_list shown(const property_list& props);

/// Returns the problems librdkafka finds in the user's properties, keyed
/// `properties.<name>` (an unknown property, a bad value, one that mailroom
/// manages itself).
std::vector<setting_problem> property_problems(const kafka_settings& s);

/// Builds a configuration from `props`, reading "env:NAME" values from the
/// environment. Returns null and sets `error` (naming the property, never
/// its value) when librdkafka refuses one or a variable is unset.
conf_ptr make_conf(const property_list& props, std::string& error);

} // namespace mailroom::kafka
