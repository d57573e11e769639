#pragma once

#include <string>
#include <vector>

#include "clients/redis/redis_reply.hpp"
#include "core/claim_store.hpp"
#include "core/unix_time.hpp"

namespace mailroom {

/// Returns the fields of a Redis hash holding `record`, as alternating names
/// and values ready to follow `HSET key`.
///
/// Every envelope field is kept byte-exact, including payload, headers,
/// attempt, attempt errors and the receipt; lists are written as
/// `<length>:<bytes>` items back to back. Times are Unix milliseconds from
/// `time`; the token is decimal.
std::vector<std::string> encode_dispatch_record(const dispatch_record& record,
                                                const unix_time& time);

/// Rebuilds a record from an `HGETALL` reply into `out`, mapping times back
/// through `time`. Returns false when the reply is not a hash written by
/// `encode_dispatch_record` (empty, a field missing or malformed).
bool decode_dispatch_record(const redisReply* fields, const unix_time& time,
                            dispatch_record& out);

} // namespace mailroom
