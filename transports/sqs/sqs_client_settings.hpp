#pragma once

// The SQS client that `[transport.sqs]` describes, for the transport and
// for `mailroom dlq` alike.

#include <string>

#include "clients/aws/aws_credentials.hpp"
#include "clients/aws/sqs_api.hpp"
#include "transports/sqs/sqs_transport_settings.hpp"

namespace mailroom {

/// Returns the client settings of `s` signing for `region`: its endpoint
/// and request timeout, connects bounded by 3 s.
sqs_settings client_settings_of(const sqs_transport_settings& s, const std::string& region);

/// Loads the credentials `s` names (the environment, else its profile);
/// throws std::runtime_error with the reason when there are none.
aws_credentials credentials_of(const sqs_transport_settings& s);

} // namespace mailroom
