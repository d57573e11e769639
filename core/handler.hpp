#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/envelope.hpp"
#include "core/outcome.hpp"

namespace mailroom {

/// What a handler may know about the call it is in.
struct handler_context {
  clock::time_point deadline; ///< When the engine stops waiting for this call.
  std::uint32_t attempt = 1;  ///< Delivery count of the message.
  /// Set by the engine when the call timed out or the engine is stopping.
  /// Long handlers should check it and return early; a handler that ignores
  /// it is abandoned at the deadline and its result discarded.
  const std::atomic<bool>* cancelled = nullptr;

  /// Returns true when the engine no longer waits for this call.
  bool is_cancelled() const {
    return cancelled != nullptr && cancelled->load(std::memory_order_relaxed);
  }
};

/// A per-message handler: decides the outcome of one message. Exceptions it
/// throws count as `retry` with the exception's text as the reason.
using handler_fn = std::function<outcome(const envelope&, handler_context&)>;

/// What the engine does with a message whose topic has no handler.
enum class unknown_topic_policy {
  ack,         ///< Acknowledge it and count it as unrouted.
  dead_letter, ///< Park it in the dead-letter destination.
};

/// Maps topics to handlers; a fallback handler serves every other topic.
///
/// Built before the engine starts and read-only afterwards, so lookups from
/// many threads need no lock.
class handler_registry {
public:
  /// Registers `fn` for messages of `topic`, replacing an earlier one.
  void add(const std::string& topic, handler_fn fn) { by_topic_[topic] = std::move(fn); }

  /// Registers `fn` for every topic without a handler of its own.
  void set_fallback(handler_fn fn) { fallback_ = std::move(fn); }

  /// Returns the handler for `topic`, or nullptr when none applies.
  const handler_fn* find(const std::string& topic) const {
    if (auto i = by_topic_.find(topic); i != by_topic_.end()) {
      return &i->second;
    }
    return fallback_ ? &fallback_ : nullptr;
  }

  /// Returns true when no handler at all is registered.
  bool empty() const { return by_topic_.empty() && !fallback_; }

private:
  std::unordered_map<std::string, handler_fn> by_topic_;
  handler_fn fallback_;
};

} // namespace mailroom
