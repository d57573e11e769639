#pragma once

#include "app/app_config.hpp"
#include "app/transport_registry.hpp"

namespace mailroom {

/// `mailroom sweep`: runs one sweeper tick against the configured claim
/// store, hands what it recovered to the configured handler and transport,
/// waits until that is settled, prints the per-stage summary (JSON with
/// `json`) and returns the exit code: 0, or 1 when a listing failed (the
/// store did not answer), nothing could be settled in time, or the engine
/// failed. For operators who schedule recovery from cron or a Kubernetes
/// CronJob instead of the in-process timer.
///
/// Throws config_error when the configuration cannot sweep: the claim
/// store must be shared ("redis"), and Kafka settles only through its
/// consumer group, so it has no one-shot sweep.
int sweep_app(const app_config& cfg, const transport_registry& registry, bool json);

} // namespace mailroom
