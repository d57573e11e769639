#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/envelope.hpp"
#include "core/outcome.hpp"
#include "core/step_scope.hpp"

namespace mailroom {

/// What a handler may know about the call it is in.
struct handler_context {
  clock::time_point deadline; ///< When the engine stops waiting for this call.
  std::uint32_t attempt = 1;  ///< Delivery count of the message.
  /// Set by the engine when the call timed out or the engine is stopping.
  /// Long handlers should check it and return early; a handler that ignores
  /// it is abandoned at the deadline and its result discarded.
  const std::atomic<bool>* cancelled = nullptr;

  /// True when a `retry` from this call will not be retried: the budget is
  /// spent, so the message goes to the dead-letter destination instead.
  bool final_attempt = false;
  /// The root scope of durable steps; set only for handlers registered with
  /// `handler_registry::add_durable` on an engine with a checkpoint store.
  step_scope* steps = nullptr;

  /// Returns true when the engine no longer waits for this call.
  bool is_cancelled() const {
    return cancelled != nullptr && cancelled->load(std::memory_order_relaxed);
  }

  /// Runs a durable step (step_scope::step): once per message, replayed from
  /// its checkpoint on later deliveries.
  std::string step(const std::string& name, const step_scope::forward_fn& forward) {
    return durable().step(name, forward);
  }

  /// Runs a durable step with its compensation (step_scope::step).
  std::string step(const std::string& name, const step_scope::forward_fn& forward,
                   step_scope::compensate_fn compensate) {
    return durable().step(name, forward, std::move(compensate));
  }

  /// Returns a child scope of durable steps (step_scope::child).
  step_scope child(const std::string& name) { return durable().child(name); }

  /// Writes the step checkpoints gathered so far (step_scope::flush).
  io_result flush() { return durable().flush(); }

private:
  step_scope& durable() {
    if (steps == nullptr) {
      throw std::logic_error(
          "durable steps need a handler registered with add_durable on an engine "
          "with a checkpoint store");
    }
    return *steps;
  }
};

/// A per-message handler: decides the outcome of one message. Exceptions it
/// throws count as `retry` with the exception's text as the reason.
using handler_fn = std::function<outcome(const envelope&, handler_context&)>;

namespace detail {

/// The engine's side of one asynchronous handler call (an implementation
/// detail: handlers only see `completion`).
class pending_call {
public:
  virtual ~pending_call() = default;

  /// Delivers the outcome; returns false when the call was already decided
  /// (completed before, timed out, or handed back at a drain).
  virtual bool complete(outcome result) = 0;

  /// Returns true once the engine no longer waits for this call.
  virtual bool cancelled() const = 0;
};

} // namespace detail

/// The way an asynchronous handler reports its outcome, later and from any
/// thread.
///
/// Copyable and thread-safe; every copy refers to the same call. Exactly one
/// call counts: the first. A second call, or one after the handler timeout
/// (the message was then retried) or after the drain deadline (it was handed
/// back), is ignored and counted (`duplicate_completions`,
/// `late_completions`). Never calling it counts as a timeout.
class completion {
public:
  /// Creates a completion that ignores every call (for tests of handlers).
  completion() = default;

  /// Wraps the engine's side of one call.
  explicit completion(std::shared_ptr<detail::pending_call> call)
      : call_(std::move(call)) {}

  /// Reports the outcome. Returns true when this call decided the message,
  /// false when it was ignored.
  bool operator()(outcome result) const {
    return call_ != nullptr && call_->complete(std::move(result));
  }

  /// Returns true once the engine no longer waits for this call (timed out,
  /// or the engine is stopping): work still running may stop early.
  bool cancelled() const { return call_ != nullptr && call_->cancelled(); }

private:
  std::shared_ptr<detail::pending_call> call_;
};

/// An asynchronous handler: starts the work for one message and returns at
/// once; the outcome arrives later through `done`.
///
/// The envelope stays valid until `done` is first called (copy what you need
/// beyond that); the context only during the call itself (its deadline and
/// attempt are values to copy). An exception thrown by the call itself counts
/// as `retry`, as for blocking handlers, and a later `done` is ignored.
using async_handler_fn =
    std::function<void(const envelope&, handler_context&, completion done)>;

/// An item of a batch that the batch handler did not settle as ok.
struct batch_item_failure {
  std::string id; ///< The item's envelope id, as the handler was given it.
  outcome result; ///< `retry` (with its reason and delay) or `dead_letter`.
};

/// A batch handler (the SQS / Lambda partial-batch style): gets up to
/// `batch_limits::max` messages of one topic, in delivery order, and returns
/// the items that failed; every other item is acked. An exception (or a
/// call past the handler timeout) fails the whole batch: every item is
/// retried, each spending its own budget.
using batch_handler_fn = std::function<std::vector<batch_item_failure>(
    const std::vector<const envelope*>&, handler_context&)>;

/// How a batch handler's batches are gathered.
struct batch_limits {
  std::size_t max = 10; ///< Most messages in one call.
  /// Longest wait for more messages once a batch has its first one, ms.
  std::chrono::milliseconds window{50};
};

/// One registered handler: blocking (run on a lane, one at a time),
/// asynchronous (started on a lane, completed later) or a batch handler.
/// Exactly one is set.
struct handler_entry {
  handler_fn blocking;    ///< Set for blocking handlers.
  async_handler_fn async; ///< Set for asynchronous handlers.
  /// A blocking handler running durable steps: the engine wraps it with its
  /// checkpoint store (and clears the flag).
  bool durable = false;
  batch_handler_fn batch; ///< Set for batch handlers.
  batch_limits limits;    ///< Of the batch handler.
};

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
  /// Registers the blocking handler `fn` for messages of `topic`, replacing
  /// an earlier one.
  void add(const std::string& topic, handler_fn fn) {
    by_topic_[topic] = blocking_entry(std::move(fn));
  }

  /// Registers the blocking handler `fn`, which runs durable steps through
  /// its context, for messages of `topic`. The engine then needs a
  /// checkpoint store (`engine_parts::checkpoints`).
  void add_durable(const std::string& topic, handler_fn fn) {
    by_topic_[topic] = blocking_entry(std::move(fn), true);
  }

  /// Registers the batch handler `fn` for messages of `topic`, called with
  /// batches gathered within `limits`.
  void add_batch(const std::string& topic, batch_handler_fn fn, batch_limits limits = {}) {
    handler_entry e;
    e.batch = std::move(fn);
    e.limits = limits;
    e.limits.max = std::max<std::size_t>(limits.max, 1);
    by_topic_[topic] = std::move(e);
  }

  /// Registers the asynchronous handler `fn` for messages of `topic`,
  /// replacing an earlier one. One lane can then hold many messages at once.
  void add_async(const std::string& topic, async_handler_fn fn) {
    by_topic_[topic] = async_entry(std::move(fn));
  }

  /// Registers the batch handler `fn` for every topic without a handler of
  /// its own.
  void set_batch_fallback(batch_handler_fn fn, batch_limits limits = {}) {
    fallback_ = handler_entry{};
    fallback_.batch = std::move(fn);
    fallback_.limits = limits;
    fallback_.limits.max = std::max<std::size_t>(limits.max, 1);
  }

  /// Registers the blocking `fn` for every topic without a handler of its own.
  void set_fallback(handler_fn fn) { fallback_ = blocking_entry(std::move(fn)); }

  /// Registers the asynchronous `fn` for every topic without a handler of its own.
  void set_async_fallback(async_handler_fn fn) {
    fallback_ = async_entry(std::move(fn));
  }

  /// Returns the handler for `topic`, or nullptr when none applies.
  const handler_entry* find(const std::string& topic) const {
    if (auto i = by_topic_.find(topic); i != by_topic_.end()) {
      return &i->second;
    }
    return has_fallback() ? &fallback_ : nullptr;
  }

  /// Returns true when a handler registered with add_durable is waiting to
  /// be wrapped.
  bool has_durable() const {
    for (const auto& [topic, entry] : by_topic_) {
      if (entry.durable) {
        return true;
      }
    }
    return fallback_.durable;
  }

  /// Replaces every durable handler `fn` with `wrap(fn)`, a plain blocking
  /// handler (the engine's checkpointing around it).
  void wrap_durable(const std::function<handler_fn(handler_fn)>& wrap) {
    for (auto& [topic, entry] : by_topic_) {
      if (entry.durable) {
        entry.blocking = wrap(std::move(entry.blocking));
        entry.durable = false;
      }
    }
    if (fallback_.durable) {
      fallback_.blocking = wrap(std::move(fallback_.blocking));
      fallback_.durable = false;
    }
  }

  /// Returns true when no handler at all is registered.
  bool empty() const { return by_topic_.empty() && !has_fallback(); }

private:
  static handler_entry blocking_entry(handler_fn fn, bool durable = false) {
    handler_entry e;
    e.blocking = std::move(fn);
    e.durable = durable;
    return e;
  }
  static handler_entry async_entry(async_handler_fn fn) {
    handler_entry e;
    e.async = std::move(fn);
    return e;
  }

  bool has_fallback() const {
    return fallback_.blocking || fallback_.async || fallback_.batch;
  }

  std::unordered_map<std::string, handler_entry> by_topic_;
  handler_entry fallback_;
};

} // namespace mailroom
