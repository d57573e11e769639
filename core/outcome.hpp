#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace mailroom {

/// What a handler decided about one message.
///
/// `ok` acknowledges it; `retry` hands it back to the transport to be
/// redelivered after a delay (the retry policy's, unless the handler names
/// one) until the attempt budget is spent; `dead_letter` parks it in the
/// dead-letter destination at once, skipping the budget.
struct outcome {
  /// The three ways a message can be settled.
  enum class kind { ok, retry, dead_letter };

  kind what = kind::ok;                           ///< The decision.
  std::string reason;                             ///< Why, for retry and dead_letter.
  std::optional<std::chrono::milliseconds> delay; ///< Retry delay chosen by the handler.

  /// Returns an outcome that acknowledges the message.
  static outcome ok() { return {}; }

  /// Returns an outcome that retries the message, after `delay` if given.
  static outcome retry(std::string why,
                       std::optional<std::chrono::milliseconds> delay = std::nullopt) {
    return {kind::retry, std::move(why), delay};
  }

  /// Returns an outcome that parks the message in the dead-letter destination.
  static outcome dead_letter(std::string why) {
    return {kind::dead_letter, std::move(why), std::nullopt};
  }
};

/// Returns "ok", "retry" or "dead_letter".
inline const char* to_string(outcome::kind k) {
  switch (k) {
  case outcome::kind::ok:
    return "ok";
  case outcome::kind::retry:
    return "retry";
  default:
    return "dead_letter";
  }
}

} // namespace mailroom
