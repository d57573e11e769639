#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/io_result.hpp"

namespace mailroom {

/// Fencing token: identifies one claim of one key. Zero is never issued.
using fencing_token = std::uint64_t;

/// The answer of `idempotency_store::claim` for one key.
struct claim_result {
  /// State of the key when the claim was attempted.
  enum class state {
    fresh,       ///< Claimed now: run the handler, `token` fences this claim.
    done,        ///< Handled before: `result` holds what complete() stored.
    in_flight,   ///< Claimed by someone else whose claim has not expired.
    unavailable, ///< The store could not be asked (outage): apply the policy.
  };
  state status = state::unavailable; ///< The key's state.
  fencing_token token = 0;           ///< Valid when `fresh`.
  std::string result;                ///< Valid when `done`.
};

/// The answer of a fenced write (complete, release, mark_terminal).
enum class fence_result {
  applied,     ///< The token matched and the write took effect.
  fenced,      ///< The claim expired and was taken over: nothing written.
  unavailable, ///< The store could not be asked.
};

/// One `complete` in a batch: a claimed key to mark done.
struct done_mark {
  std::string_view key;    ///< Idempotency key.
  fencing_token token;     ///< Token from the claim.
  std::string_view result; ///< Result to store for later duplicates.
};

/// Dedupe seam: claims keys before handling and marks them done after.
///
/// A claim is fenced: `complete` and `release` take effect only with the
/// token of the live claim, so a worker whose claim expired and was taken
/// over cannot overwrite the newer claim.
class idempotency_store {
public:
  virtual ~idempotency_store() = default;

  /// Claims every key of a polled batch in one round trip, for `ttl`.
  /// Returns one result per key, in the order of `keys`.
  virtual std::vector<claim_result> claim(const std::vector<std::string_view>& keys,
                                          std::chrono::milliseconds ttl) = 0;

  /// Marks each claimed key done, keeping its result for `ttl`. Returns one
  /// result per completion, in order.
  virtual std::vector<fence_result> complete(const std::vector<done_mark>& batch,
                                             std::chrono::milliseconds ttl) = 0;

  /// Deletes the claim on `key` if `token` still owns it, so the message can
  /// be claimed again at once on its next delivery.
  virtual fence_result release(std::string_view key, fencing_token token) = 0;
};

} // namespace mailroom
