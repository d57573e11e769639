#pragma once

// The settler: one thread that turns decided work items into transport and
// store calls. Lanes, asynchronous completions, dedupe and the worker
// watchdogs hand it what they decided and go on at once; it settles
// whatever has gathered in one batch (one complete, one ack), so messages
// that finish close together share their round trips while a message that
// finishes alone is settled within microseconds of its handler returning.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/work_item.hpp"

namespace mailroom {

struct engine_context;
class settlement;

/// A queue of decided items and the thread that settles them.
class settler {
public:
  /// Creates an idle settler; nothing runs until start().
  settler();
  ~settler();

  settler(const settler&) = delete;
  settler& operator=(const settler&) = delete;

  /// Starts the thread, settling against `ctx` (which must outlive stop()).
  void start(engine_context& ctx);

  /// Queues decided items (each with `preset` or `requeue` set).
  void push(work_batch&& items);

  /// Queues one decided item.
  void push(work_item&& item);

  /// Settles what is queued, then joins the thread. Later pushes are
  /// dropped: the engine has stopped and the transport redelivers them.
  void stop();

  /// Returns the number of items queued and not yet taken.
  std::size_t queued() const;

private:
  void run();

  engine_context* ctx_ = nullptr;
  std::unique_ptr<settlement> settle_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<work_batch> pending_;
  std::size_t queued_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  bool started_ = false;
};

} // namespace mailroom
