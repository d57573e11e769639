#pragma once

#include <string>
#include <utility>

namespace mailroom {

/// Classifies why an adapter call failed, so callers retry only what can heal.
enum class failure_class {
  none,      ///< The call succeeded.
  transient, ///< I/O error, timeout, server down: retry with backoff.
  fatal,     ///< Misconfiguration or a refused request: retrying will not help.
  poison,    ///< The message itself is bad: dead-letter it, keep going.
};

/// Result of a transport or store call: success, or a failure class and text.
///
/// Errors are values: adapters never throw across the message path.
struct [[nodiscard]] io_result {
  failure_class failure = failure_class::none; ///< `none` on success.
  std::string what;                            ///< Human-readable cause.
  /// On a success: nothing was changed because the delivery was already
  /// settled elsewhere (taken over by another delivery, or settled before),
  /// so the newer delivery settles the message. Counting it as settled would
  /// count the message twice.
  bool stale = false;

  /// Returns true when the call succeeded.
  explicit operator bool() const { return failure == failure_class::none; }

  /// Returns a successful result.
  static io_result success() { return {}; }

  /// Returns a success that changed nothing: the delivery is stale.
  static io_result stale_delivery() {
    io_result r;
    r.stale = true;
    return r;
  }

  /// Returns a transient failure with the cause `why`.
  static io_result transient(std::string why) {
    return {failure_class::transient, std::move(why)};
  }

  /// Returns a fatal failure with the cause `why`.
  static io_result fatal(std::string why) {
    return {failure_class::fatal, std::move(why)};
  }
};

} // namespace mailroom
