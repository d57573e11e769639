#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/io_result.hpp"

namespace mailroom {

/// One durable step result, keyed by (idempotency key, step id).
struct checkpoint {
  std::string key;    ///< Idempotency key of the message.
  std::string step;   ///< Step id within the handler.
  std::string result; ///< Serialised step result.
};

/// Durable-steps seam: step results that are replayed, not re-executed, when
/// a message is redelivered. Written in batches.
class checkpoint_store {
public:
  virtual ~checkpoint_store() = default;

  /// Writes every checkpoint of the batch in one call.
  virtual io_result write(const std::vector<checkpoint>& batch) = 0;

  /// Stores in `out` the result of `step` for `key` (empty when there is
  /// none) and returns success; or returns why the store could not be
  /// asked, leaving `out` untouched. "No result" and "store unavailable" must
  /// stay apart: replaying a step as absent would run it twice.
  virtual io_result read(const std::string& key, const std::string& step,
                         std::optional<std::string>& out) = 0;

  /// Replaces `out` with every checkpoint of `key` (any order) in one call
  /// (paged inside when large) and returns success; or returns why the
  /// store could not be asked, leaving `out` untouched.
  virtual io_result load(const std::string& key, std::vector<checkpoint>& out) = 0;
};

} // namespace mailroom
