#pragma once

// The exec_batch handler's wire format: a batch as the JSON array a
// Lambda-style batch function reads, and the partial-batch response it writes.

#include <string>
#include <vector>

#include "core/envelope.hpp"

namespace mailroom {

/// Returns `batch` as a JSON array of `{"id", "key", "topic", "attempt",
/// "headers", "payload"}` records; a payload that is not valid UTF-8 is
/// given as `"payload_base64"` instead.
std::string batch_records_json(const std::vector<const envelope*>& batch);

/// Reads a Lambda partial-batch response into the failed items' ids.
/// Empty output (whitespace), `{}`, `null` and an empty list mean none
/// failed. Returns false with `problem` set when `out` is not such a
/// response.
bool parse_batch_response(const std::string& out, std::vector<std::string>& ids,
                          std::string& problem);

/// Returns `data` in standard base64 with padding (RFC 4648).
std::string base64_encode(const std::string& data);

} // namespace mailroom
