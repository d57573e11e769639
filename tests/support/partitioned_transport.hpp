#pragma once

// Test support: the memory transport seen as a partitioned broker, as Kafka
// looks to the engine: every delivery carries a partition (chosen by a
// function of the message), the broker may not count deliveries, and a test
// can revoke partitions as a rebalance would. Assignments are numbered, as
// Kafka's are, and a test can hold a poll at its start to revoke and assign
// while that poll is under way.

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "tests/support/forwarding_transport.hpp"

namespace mailroom::testing {

/// Forwards to a memory transport, giving each delivery a partition.
class partitioned_transport final : public forwarding_transport {
public:
  using partition_fn = std::function<std::int32_t(const envelope&)>;

  /// `partition_of` picks each delivery's partition; with `counts` false the
  /// transport reports every delivery as a first one (attempt 1) and says it
  /// does not count deliveries.
  partitioned_transport(std::shared_ptr<transport> inner, partition_fn partition_of,
                        bool counts = true)
      : forwarding_transport(std::move(inner), false), partition_of_(std::move(partition_of)),
        counts_(counts) {}

  bool counts_deliveries() const override { return counts_; }

  void set_revocation_listener(revocation_listener* l) override {
    std::lock_guard<std::mutex> guard{mutex_};
    listener_ = l;
  }

  /// Assigns `partitions` to this consumer again after a revocation: a new
  /// assignment of each, numbered one higher.
  void assign(const std::vector<topic_partition>& partitions) {
    std::lock_guard<std::mutex> guard{mutex_};
    for (const auto& p : partitions) {
      revoked_.erase(key_of(p.topic, p.partition));
      ++assignment_[key_of(p.topic, p.partition)];
    }
  }

  /// Makes the next poll wait at its start until release_poll().
  void hold_next_poll() {
    std::lock_guard<std::mutex> guard{mutex_};
    hold_ = true;
  }

  /// Waits (at most `limit`) until a poll is held; returns true if one is.
  bool wait_for_held_poll(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> guard{mutex_};
    return changed_.wait_for(guard, limit, [this] { return held_; });
  }

  /// Lets the held poll go on.
  void release_poll() {
    std::lock_guard<std::mutex> guard{mutex_};
    hold_ = false;
    changed_.notify_all();
  }

  /// Revokes `partitions` now, from the calling thread (as a transport's own
  /// consumer thread would when the broker rebalances): they are no longer
  /// delivered here, and the engine reports what it did.
  revocation_report revoke(const std::vector<topic_partition>& partitions,
                           std::chrono::milliseconds wait) {
    revocation_listener* listener = nullptr;
    auto numbered = partitions;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      for (auto& p : numbered) {
        revoked_.insert(key_of(p.topic, p.partition));
        p.assignment = assignment_of(p.topic, p.partition);
      }
      listener = listener_;
    }
    return listener != nullptr ? listener->revoke(numbered, wait) : revocation_report{};
  }

  io_result poll(std::size_t max, std::chrono::milliseconds wait,
                 envelope_batch& out) override {
    {
      std::unique_lock<std::mutex> guard{mutex_};
      held_ = hold_;
      changed_.notify_all();
      changed_.wait(guard, [this] { return !hold_; });
      held_ = false;
    }
    envelope_batch got;
    auto r = inner_->poll(max, wait, got);
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& m : got) {
      m.handle.partition = partition_of_(m);
      m.handle.assignment = assignment_of(m.topic, m.handle.partition);
      if (!counts_) {
        m.attempt = 1;
      }
      // Another consumer's partition now: left in flight for it.
      if (revoked_.count(key_of(m.topic, m.handle.partition)) == 0) {
        out.push_back(std::move(m));
      }
    }
    return r;
  }

private:
  static std::string key_of(const std::string& topic, std::int32_t partition) {
    return topic + "/" + std::to_string(partition);
  }

  // Every partition starts in assignment 1.
  std::uint64_t assignment_of(const std::string& topic, std::int32_t partition) {
    return 1 + assignment_[key_of(topic, partition)];
  }

  partition_fn partition_of_;
  bool counts_;
  std::mutex mutex_;
  revocation_listener* listener_ = nullptr;
  std::set<std::string> revoked_;
  std::map<std::string, std::uint64_t> assignment_; // assignments after the first
  std::condition_variable changed_;
  bool hold_ = false; // the next poll waits at its start
  bool held_ = false; // a poll waits there now
};

} // namespace mailroom::testing
