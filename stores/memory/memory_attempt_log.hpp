#pragma once

#include <atomic>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/attempt_log.hpp"
#include "core/envelope.hpp"

namespace mailroom {

/// Settings of a memory_attempt_log.
struct memory_attempt_log_settings {
  /// How long a history is kept after its latest record. Default 7 days.
  std::chrono::milliseconds ttl = attempt_history_ttl;
  /// Most histories kept; beyond it the least recently recorded is dropped
  /// (its message then starts its retry budget again). Default 100000.
  std::size_t capacity = 100000;
};

/// An in-process attempt log: histories in one hash map, the least recently
/// recorded first out when it is full. The default of the engine; it lives
/// as long as the process, so a history survives redeliveries but not a
/// restart. Thread-safe.
///
/// While an outage is simulated (`set_available(false)`) every call fails
/// transiently and nothing changes.
class memory_attempt_log final : public attempt_log {
public:
  /// Creates an empty log with settings `s`.
  explicit memory_attempt_log(memory_attempt_log_settings s = {});

  memory_attempt_log(const memory_attempt_log&) = delete;
  memory_attempt_log& operator=(const memory_attempt_log&) = delete;

  io_result load(const std::vector<std::string_view>& ids,
                 std::vector<std::optional<attempt_history>>& out) override;
  io_result deliver(const std::vector<std::string_view>& ids,
                    std::vector<attempt_history>& out) override;
  io_result record(const std::vector<attempt_entry>& entries) override;
  io_result forget(const std::vector<std::string_view>& ids) override;

  /// Returns the number of histories held.
  std::size_t size() const;

  /// Switches outage simulation: while `false`, calls fail as described above.
  void set_available(bool available) { available_.store(available); }

private:
  struct kept {
    attempt_history history;
    clock::time_point expires;
    std::list<std::string>::iterator age; // place in oldest_
  };

  void erase_locked(std::unordered_map<std::string, kept>::iterator it);
  void store_locked(std::string id, attempt_history h, clock::time_point expires);

  const memory_attempt_log_settings settings_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, kept> histories_;
  std::list<std::string> oldest_; // least recently recorded first
  std::atomic<bool> available_{true};
};

} // namespace mailroom
