#pragma once

// Test support: the memory transport seen as a partitioned broker, as Kafka
// looks to the engine: every delivery carries a partition (chosen by a
// function of the message), the broker may not count deliveries, and a test
// can revoke partitions as a rebalance would.

#include <functional>
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

  /// Assigns `partitions` to this consumer again after a revocation.
  void assign(const std::vector<topic_partition>& partitions) {
    std::lock_guard<std::mutex> guard{mutex_};
    for (const auto& p : partitions) {
      revoked_.erase(key_of(p.topic, p.partition));
    }
  }

  /// Revokes `partitions` now, from the calling thread (as a transport's own
  /// consumer thread would when the broker rebalances): they are no longer
  /// delivered here, and the engine reports what it did.
  revocation_report revoke(const std::vector<topic_partition>& partitions,
                           std::chrono::milliseconds wait) {
    revocation_listener* listener = nullptr;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      for (const auto& p : partitions) {
        revoked_.insert(key_of(p.topic, p.partition));
      }
      listener = listener_;
    }
    return listener != nullptr ? listener->revoke(partitions, wait) : revocation_report{};
  }

  io_result poll(std::size_t max, std::chrono::milliseconds wait,
                 envelope_batch& out) override {
    envelope_batch got;
    auto r = inner_->poll(max, wait, got);
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& m : got) {
      m.handle.partition = partition_of_(m);
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

  partition_fn partition_of_;
  bool counts_;
  std::mutex mutex_;
  revocation_listener* listener_ = nullptr;
  std::set<std::string> revoked_;
};

} // namespace mailroom::testing
