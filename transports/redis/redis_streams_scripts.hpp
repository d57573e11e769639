#pragma once

namespace mailroom {

/// Holds the Lua scripts of the Redis Streams transport. Each runs by
/// EVALSHA in one round trip, so each step is atomic on the server: no other
/// consumer sees half of it.
///
/// Key and argument layouts are documented beside each source in
/// redis_streams_scripts.cpp; redis_streams_transport is their only caller.
struct redis_streams_scripts {
  /// Takes over idle entries (XAUTOCLAIM) and claims due retries (XCLAIM),
  /// at most `room` in all.
  static const char* const poll;
  /// Schedules a pending entry's redelivery in the retry set and stores its
  /// attempt errors; does nothing for an entry no longer pending.
  static const char* const nack;
  /// Writes the dead-letter entry, then acknowledges the original and drops
  /// its retry and error records; nothing after a failed write.
  static const char* const dead_letter;
  /// Deletes a consumer from its group when it holds no pending entry.
  static const char* const release_consumer;
  /// Resets the idle time of entries still pending to this consumer.
  static const char* const extend;
};

} // namespace mailroom
