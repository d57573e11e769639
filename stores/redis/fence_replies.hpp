#pragma once

// Reads the answer of a fenced Lua script: one integer per item, 1 when the
// token matched and the write applied, 0 when it was fenced.

#include <vector>

#include <hiredis/hiredis.h>

#include "core/idempotency_store.hpp"

namespace mailroom {

/// Fills `out[i]` from `reply->element[i]` (an array already checked to hold
/// `out.size()` elements); non-integer elements leave `out[i]` as it was.
inline void read_fence_replies(const redisReply* reply, std::vector<fence_result>& out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const redisReply* e = reply->element[i];
    if (e->type == REDIS_REPLY_INTEGER) {
      out[i] = e->integer == 1 ? fence_result::applied : fence_result::fenced;
    }
  }
}

} // namespace mailroom
