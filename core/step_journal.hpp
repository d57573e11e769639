#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/checkpoint_store.hpp"
#include "core/io_retry.hpp"
#include "core/metrics.hpp"
#include "core/step_mode.hpp"
#include "core/step_scope.hpp"

namespace mailroom {

/// The durable state of one handler call of one message: the checkpoints
/// loaded when it started, those written since and those still to write,
/// and the compensations its steps registered.
///
/// A checkpoint's value is `<kind><name length>:<name><result>`, kind `s`
/// for a step, `c` for a child scope and `u` for a compensation that ran
/// (stored under `<step id>!undo`).
class step_journal {
public:
  /// Creates the journal of the message whose checkpoints live under `key`.
  step_journal(std::string key, checkpoint_store& store, io_retry& retry, step_mode mode,
               engine_metrics& metrics);

  /// Makes steps and compensations stop once `*flag` is set (the engine no
  /// longer waits for the call: a redelivery may be running them).
  void set_cancel_flag(const std::atomic<bool>* flag) { cancelled_ = flag; }

  /// Throws step_cancelled when the call was cancelled.
  void check_cancelled() const;

  /// Loads every checkpoint of the message in one store call (retried
  /// while transient).
  io_result load();

  /// Returns the checkpointed result of `id`, or nullptr when it has none;
  /// throws replay_mismatch when it was checkpointed under another name or
  /// kind.
  const std::string* replay(const std::string& id, char kind, const std::string& name);

  /// Records the result of `id`: gathered (batch mode) or written now
  /// (per-step; throws step_store_failure when that fails).
  void record(const std::string& id, char kind, const std::string& name, std::string result);

  /// Registers the compensation of step `id`.
  void add_compensation(const std::string& id, const std::string& name,
                        step_scope::compensate_fn fn, std::string result);

  /// Runs, newest first, the registered compensations whose id starts with
  /// `prefix` and that have not run yet (each tried with the store I/O
  /// backoff, its run checkpointed at once), stopping when the call is
  /// cancelled. Returns one line per failure.
  std::vector<std::string> compensate(const std::string& prefix);

  /// Writes what was gathered in one store call (retried while transient).
  io_result flush();

  /// Returns the number of checkpoints gathered and not written yet.
  std::size_t unwritten() const { return pending_.size(); }

private:
  struct saved {
    char kind;
    std::string name;
    std::string result;
  };
  struct compensation {
    std::string id, name;
    step_scope::compensate_fn fn;
    std::string result;
  };

  io_result write(const std::vector<checkpoint>& batch);
  std::string run_compensation(const compensation& c);

  std::string key_;
  checkpoint_store* store_;
  io_retry* retry_;
  step_mode mode_;
  engine_metrics* metrics_;
  std::map<std::string, saved> saved_;
  std::vector<checkpoint> pending_;
  std::vector<compensation> compensations_;
  const std::atomic<bool>* cancelled_ = nullptr;
};

/// Returns the stored value of a checkpoint: `<kind><name length>:<name><result>`.
std::string encode_step_value(char kind, const std::string& name, const std::string& result);

/// Reads a stored value into its parts; false when it is not one.
bool decode_step_value(const std::string& value, char& kind, std::string& name,
                       std::string& result);

} // namespace mailroom
