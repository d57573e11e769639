#pragma once

// The queue between dedupe and the lanes: dispatched messages wait here for
// a lane, in the order their ordering mode requires. It lives in the engine
// context, outside every actor and lane, so nothing waiting in it is lost
// when a worker crashes or a lane is abandoned.
//
// Besides ordering it decides two sizes from the handlers' measured latency:
// how many messages a lane takes at once (a unit: about a millisecond of
// work, so a result is settled within milliseconds of its handler returning)
// and how many may wait at all (about 100 ms of work for every lane, so
// nothing is taken in long before a lane is ready for it). The poller asks
// for no more than `room()`.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/work_item.hpp"
#include "core/engine_config.hpp"

namespace mailroom {

/// Dispatched messages waiting for a lane.
///
/// `unordered`: one FIFO, any lane takes anything. `per_key`: one FIFO per
/// ordering key; a key whose messages a lane holds is not handed to another
/// lane until every one of them has finished (finish()), so one key runs in
/// order while different keys run at once. `per_partition`: the same with
/// topic and partition as the key.
///
/// Thread-safe.
class work_queue {
public:
  /// Creates a queue for `lanes` lanes in `mode`, holding at most
  /// `max_waiting` messages' worth of room (the in-flight budget).
  work_queue(ordering_mode mode, std::uint32_t lanes, std::uint32_t max_waiting);

  /// Counts `n` polled messages on their way here (through dedupe) against
  /// room(), so the poller does not poll again for room they will fill.
  void reserve(std::size_t n);

  /// Appends `items` (one dispatched batch, in order) and returns the room
  /// `reserved` for their poll (duplicates among them never arrive).
  void push(work_batch&& items, std::size_t reserved = 0);

  /// Waits until a message is ready for a lane or `stop()` returns true, then
  /// moves up to `max` ready messages into `out`. Returns false when it
  /// returned because of `stop`.
  template <class Stop> bool take(std::size_t max, work_batch& out, Stop stop) {
    std::unique_lock<std::mutex> guard{mutex_};
    readable_.wait(guard, [&] { return ready_items_ > 0 || stop(); });
    return take_ready(guard, max, out);
  }

  /// Moves ready messages into `out` until it holds `max` (as take()),
  /// waiting for one until `deadline` at most, or until `stop()` returns
  /// true (wake_all() makes it look); returns false when none came (a batch
  /// handler's window closed, or the lane stops).
  template <class Stop>
  bool take_until(std::size_t max, work_batch& out, clock::time_point deadline, Stop stop) {
    std::unique_lock<std::mutex> guard{mutex_};
    readable_.wait_until(guard, deadline, [&] { return ready_items_ > 0 || stop(); });
    return take_ready(guard, max, out);
  }

  /// Puts messages taken but never started back at the front, in order, and
  /// lets go of their keys (a lane was abandoned with them).
  void put_back(work_batch&& items);

  /// Lets go of the key of a message whose handler finished (per_key).
  void finish(const work_item& item);

  /// Lets go of the keys of `items[first..]` (per_key).
  void finish_all(const work_batch& items, std::size_t first = 0);

  /// Removes every waiting message (ready or behind a busy key) for which
  /// `pred` is true and returns them, in queue order per key. `pred` runs
  /// under the queue's lock: it must not call back into the queue.
  work_batch remove_if(const std::function<bool(const work_item&)>& pred);

  /// Removes every waiting message whose key() is one of `keys` (keyed
  /// modes; nothing when unordered) and returns them, in order per key.
  work_batch remove_keys(const std::vector<std::string>& keys);

  /// Returns the key that `mode` serialises `m` on: its ordering key
  /// (per_key), or its topic and partition (per_partition).
  std::string key_of(const envelope& m) const;

  /// Returns true in the ordering modes that hold a key while it runs.
  bool keyed() const { return mode_ != ordering_mode::unordered; }

  /// Wakes every lane waiting in take() so it re-checks its stop condition.
  void wake_all();

  /// Returns the number of messages waiting, ready or behind a busy key.
  std::size_t waiting() const;

  /// Returns how many more messages may be polled before the queue holds
  /// the work of its window: `target() - ready - reserved`, at least 0.
  std::size_t room() const;

  /// Returns how many ready messages the queue aims to hold at most: about
  /// 100 ms of handler time for every lane, at least one per lane, at most
  /// the in-flight budget.
  std::size_t target() const;

  /// Returns how many messages a lane should take at once: about 1 ms of
  /// handler time, 1 while nothing is measured yet, at most max_unit.
  std::size_t unit_size() const;

  /// Publishes lane `lane`'s estimate of its slowest handler (ns per
  /// message, -1 for none); the slowest lane's estimate sizes everything.
  void publish_estimate(std::uint32_t lane, std::int64_t ns);

  /// Returns the slowest published estimate (ns per message), -1 for none.
  std::int64_t estimate() const;

  /// Returns the handler time one unit is meant to take (1 ms).
  static clock::duration unit_budget();

  /// Returns true when room() is at least `threshold` now; otherwise arms
  /// the room callback to fire once room reaches `threshold` and returns
  /// false.
  bool room_or_signal(std::size_t threshold);

  /// Sets the callback run (outside the lock) when armed room opens up.
  void set_on_room(std::function<void()> fn) { on_room_ = std::move(fn); }

  /// Makes every message taken from now on be handed back (drain deadline).
  void set_handing_back() { handing_back_.store(true, std::memory_order_release); }

  /// Returns true once the drain deadline asked for hand-back.
  bool handing_back() const { return handing_back_.load(std::memory_order_acquire); }

  /// Most messages one unit holds: enough to amortise a hand-off and a
  /// batched settlement, few enough that one timeout re-queues little.
  static constexpr std::size_t max_unit = 256;

private:
  struct key_state {
    std::string key;
    std::deque<work_item> items;
    std::uint32_t taken = 0; // held by lanes, not yet finished
    bool ready = false;      // listed in ready_keys_
  };

  const std::string& key_locked(const envelope& m) const;
  void remove_unordered_locked(const std::function<bool(const work_item&)>& pred,
                               work_batch& out);
  void remove_keyed_locked(const std::function<bool(const work_item&)>& pred,
                           work_batch& out);
  void take_locked(std::size_t max, work_batch& out);
  /// After a wait: moves up to `max` ready messages into `out`, unlocks
  /// `guard` and signals room when due. Returns false when none was ready.
  bool take_ready(std::unique_lock<std::mutex>& guard, std::size_t max, work_batch& out);
  void take_unordered_locked(std::size_t max, work_batch& out);
  void take_keyed_locked(std::size_t max, work_batch& out);
  void finish_locked(const std::string& key, std::uint32_t count);
  void make_ready_locked(key_state& k);
  bool room_signal_due_locked();
  std::size_t room_locked() const;

  const ordering_mode mode_;
  const std::uint32_t lanes_;
  const std::uint32_t max_waiting_;
  mutable std::mutex mutex_;
  std::condition_variable readable_;
  // unordered: batches as pushed; a lane takes from the front one's `head`
  // on, so a partial take moves only what it takes (an erase at the front
  // would shift the rest of the chunk on every take).
  struct chunk {
    work_batch items;
    std::size_t head = 0; // items before it were taken (moved from)
  };
  std::deque<chunk> chunks_;
  // per_key: node-based map, so key_state pointers stay valid
  std::unordered_map<std::string, key_state> keys_;
  std::deque<key_state*> ready_keys_;
  mutable std::string scratch_; // per_partition keys, built under the lock
  std::size_t ready_items_ = 0; // takeable now
  std::size_t waiting_ = 0;     // all queued
  std::size_t reserved_ = 0;    // polled, on the way through dedupe
  std::size_t signal_at_ = 0;   // armed room threshold, 0 when unarmed
  std::function<void()> on_room_;
  std::unique_ptr<std::atomic<std::int64_t>[]> estimates_; // per lane, -1 unknown
  std::atomic<bool> handing_back_{false};
};

} // namespace mailroom
