#pragma once

// Asynchronous handler calls in progress. A lane starts the call and moves
// on; the call owns its message until the handler's completion, the handler
// timeout or the drain deadline decides it, whichever comes first (one
// compare-and-swap), and then hands it to the settler. The pending calls
// form one list in start order, which is deadline order (one timeout for
// all), so finding the expired ones looks at the front only.

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>

#include "actors/work_item.hpp"
#include "core/handler.hpp"

namespace mailroom {

struct engine_context;
class async_calls;

/// One asynchronous handler call and the message it owns.
class async_call final : public detail::pending_call {
public:
  /// Creates the call for `item`, due by `deadline`.
  async_call(std::shared_ptr<engine_context> ctx, work_item item,
             clock::time_point deadline);

  /// The handler's completion: settles with `result` unless decided already.
  bool complete(outcome result) override;

  /// Returns true once the engine no longer waits for this call.
  bool cancelled() const override {
    return cancelled_.load(std::memory_order_relaxed);
  }

  /// Returns the message (valid until the call is decided).
  const envelope& message() const { return item_.msg; }

  /// Returns the flag handed to the handler's context.
  const std::atomic<bool>* cancel_flag() const { return &cancelled_; }

  /// Returns when the engine stops waiting.
  clock::time_point deadline() const { return deadline_; }

private:
  friend class async_calls;
  enum state : int { pending = 0, completed = 1, expired = 2 };

  // Decides the call with `result` (or hands it back when `result` is
  // empty) unless it was decided already; `as` is the state it ends in.
  bool decide(std::optional<outcome> result, state as);

  std::shared_ptr<engine_context> ctx_;
  work_item item_;
  const clock::time_point deadline_;
  std::atomic<int> state_{pending};
  std::atomic<bool> cancelled_{false};
  // The pending list's links; guarded by the list's mutex.
  std::shared_ptr<async_call> self_;
  async_call* prev_ = nullptr;
  async_call* next_ = nullptr;
};

/// The pending asynchronous calls of one engine.
class async_calls {
public:
  async_calls() = default;
  async_calls(const async_calls&) = delete;
  async_calls& operator=(const async_calls&) = delete;

  /// Adds a call that has just started.
  void add(const std::shared_ptr<async_call>& call);

  /// Decides every call whose deadline passed by `now` as a timeout
  /// (retry), counting each in the engine's timeouts; returns how many.
  std::size_t expire_due(clock::time_point now);

  /// Hands every pending call's message back (drain deadline); returns how
  /// many. Their completions are ignored from then on.
  std::size_t hand_back_all();

  /// Returns the number of pending calls.
  std::size_t pending() const;

private:
  friend class async_call;
  void remove(async_call* call);
  std::shared_ptr<async_call> front() const;

  mutable std::mutex mutex_;
  async_call* head_ = nullptr;
  async_call* tail_ = nullptr;
  std::size_t size_ = 0;
};

} // namespace mailroom
