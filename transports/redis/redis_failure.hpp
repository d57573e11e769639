#pragma once

#include <string_view>

#include "clients/redis/redis_connection.hpp"
#include "core/io_result.hpp"

namespace mailroom {

/// Returns true when one of the replies of `r` is a server error whose code
/// (its first word, e.g. `NOGROUP`) is `code`.
bool has_error_code(const redis_replies& r, std::string_view code);

/// Returns the status of `r`, with the server errors that heal by themselves
/// reclassified as transient: `LOADING` (restart), `BUSY` (a long script),
/// `TRYAGAIN`, `MASTERDOWN`, `CLUSTERDOWN`, `READONLY` (a failover under
/// way), `OOM` (memory may be freed) and `NOGROUP` (the group is created
/// again by the next poll). Other server errors stay fatal.
///
/// The engine's poller stops polling on a fatal failure, so only errors that
/// no retry can fix may keep that class.
io_result streams_failure(const redis_replies& r);

} // namespace mailroom
