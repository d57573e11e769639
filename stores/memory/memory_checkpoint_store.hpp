#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/checkpoint_store.hpp"

namespace mailroom {

/// An in-process checkpoint store: one map of steps per idempotency key,
/// kept as long as the process (no expiry). For tests and single-process
/// deployments that accept losing step results at a restart. Thread-safe.
///
/// It counts its calls, so tests can check that a handler's checkpoints
/// went in one write; and it can simulate failures: while
/// `set_failure(failure_class::transient)` (or `fatal`) is in force, every
/// call fails that way and nothing changes.
class memory_checkpoint_store final : public checkpoint_store {
public:
  memory_checkpoint_store() = default;
  memory_checkpoint_store(const memory_checkpoint_store&) = delete;
  memory_checkpoint_store& operator=(const memory_checkpoint_store&) = delete;

  io_result write(const std::vector<checkpoint>& batch) override;
  io_result read(const std::string& key, const std::string& step,
                 std::optional<std::string>& out) override;
  io_result load(const std::string& key, std::vector<checkpoint>& out) override;

  /// Makes every later call fail with `f` (`none` ends the simulation).
  void set_failure(failure_class f) { failure_.store(f); }

  /// Returns the number of write calls that succeeded.
  std::uint64_t writes() const { return writes_.load(); }
  /// Returns the number of load calls that succeeded.
  std::uint64_t loads() const { return loads_.load(); }
  /// Returns the number of calls that failed (simulated).
  std::uint64_t failures() const { return failures_.load(); }

private:
  io_result refused();

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::map<std::string, std::string>> steps_;
  std::atomic<failure_class> failure_{failure_class::none};
  std::atomic<std::uint64_t> writes_{0}, loads_{0}, failures_{0};
};

} // namespace mailroom
