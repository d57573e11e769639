#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/claim_store.hpp"
#include "core/unix_time.hpp"

namespace mailroom {

/// Returns the one string value holding `record` in Redis.
///
/// The value is `<length>:<bytes>` items back to back in a fixed order, the
/// token first, so a fenced delete compares only the value's first bytes
/// (`dispatch_record_token_prefix`) instead of reading the whole record.
/// Every envelope field is kept byte-exact, including payload, headers,
/// attempt, attempt errors and the receipt. Times are Unix milliseconds from
/// `time`; numbers are decimal. One string instead of a hash of 17 fields:
/// writing it is one SET that replaces any earlier record, and deleting it
/// frees one allocation.
std::string encode_dispatch_record(const dispatch_record& record, const unix_time& time);

/// Returns the bytes every record written under `token` starts with.
std::string dispatch_record_token_prefix(fencing_token token);

/// Rebuilds a record from a value written by `encode_dispatch_record` into
/// `out`, mapping times back through `time`. Returns false when `value` is
/// not one (truncated, an item missing or malformed, bytes left over).
bool decode_dispatch_record(std::string_view value, const unix_time& time,
                            dispatch_record& out);

/// Returns the one string value holding a batch of records: the record
/// count, then each record's key (`dispatch_record::filed_under`) and its
/// `encode_dispatch_record` value, as `<length>:<bytes>` items. The count
/// comes first so a script reads it from the value's first bytes.
std::string encode_dispatch_batch(const std::vector<const dispatch_record*>& records,
                                  const unix_time& time);

/// Appends to `out` the records of a value written by `encode_dispatch_batch`
/// (each with `key` set to the key it was filed under). Returns false, and
/// appends nothing, when `value` is not one.
bool decode_dispatch_batch(std::string_view value, const unix_time& time,
                           std::vector<dispatch_record>& out);

} // namespace mailroom
