#pragma once

#include <memory>
#include <string_view>

#include <hiredis/hiredis.h>

namespace mailroom {

/// Frees a hiredis reply tree with `freeReplyObject`.
struct redis_reply_deleter {
  /// Frees `reply` and every element below it.
  void operator()(redisReply* reply) const noexcept;
};

/// Owns one top-level hiredis reply (its elements are owned by it).
using reply_ptr = std::unique_ptr<redisReply, redis_reply_deleter>;

/// Returns the bytes of a string, status or error reply, or an empty view for
/// any other reply (and for null).
std::string_view reply_text(const redisReply* reply);

/// Returns true when `reply` is a server error reply (`-ERR ...`).
bool is_error_reply(const redisReply* reply);

/// Returns true when `reply` is an array of exactly `n` elements.
bool is_array_of(const redisReply* reply, std::size_t n);

} // namespace mailroom
