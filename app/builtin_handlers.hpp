#pragma once

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "app/exec_handler.hpp"
#include "core/handler.hpp"

namespace mailroom {

/// Returns a handler that acknowledges every message without looking at it.
///
/// Useful to measure the engine's own overhead and to drain a topic.
handler_fn make_noop_handler();

/// Returns a handler that logs each message and acknowledges it.
///
/// Logs topic, idempotency key, message id, attempt and payload size at info
/// level through spdlog's default logger. The payload itself is never logged:
/// it may hold data the logs must not see.
handler_fn make_log_handler();

/// Returns the handler of the generator demo, without simulated latency.
///
/// Decides per message:
///  - a payload that is not valid JSON is dead-lettered with
///    "malformed JSON payload: <parser message>";
///  - a payload whose JSON has a non-negative integer field
///    `"fail_attempts": N` is retried ("simulated transient failure") while
///    the attempt is <= N, then acknowledged;
///  - anything else is acknowledged.
///
/// The field is found by a substring search after validation, not by a full
/// parse, so the happy path costs one validating scan of the payload. A
/// `fail_attempts` key nested deeper in the document counts as well.
handler_fn make_demo_handler();

/// Returns the demo handler that also sleeps `latency` per message.
///
/// The sleep happens in slices of at most a few milliseconds; when the
/// context is cancelled the handler stops sleeping and returns a retry
/// ("cancelled"), which the engine discards. A zero latency skips the sleep.
handler_fn make_demo_handler(std::chrono::microseconds latency);

} // namespace mailroom
