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
struct io_result {
  failure_class failure = failure_class::none; ///< `none` on success.
  std::string what;                            ///< Human-readable cause.

  /// Returns true when the call succeeded.
  explicit operator bool() const { return failure == failure_class::none; }

  /// Returns a successful result.
  static io_result success() { return {}; }

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
