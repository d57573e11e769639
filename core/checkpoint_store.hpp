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

  /// Returns the stored result of `step` for `key`, if any.
  virtual std::optional<std::string> read(const std::string& key,
                                          const std::string& step) = 0;
};

} // namespace mailroom
