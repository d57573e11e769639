#pragma once

// The dead-letter stream of the Redis Streams transport, for `mailroom dlq`:
// read with XRANGE in pages, a replay is one script (XADD to the source
// stream, DEL of the idempotency key, XDEL from the dead-letter stream), so
// a replay cut short by a crash left the record in one place only.

#include <memory>
#include <string>

#include "clients/redis/redis_connection.hpp"
#include "core/dead_letter_queue.hpp"
#include "core/dedupe_key.hpp"
#include "transports/redis/redis_streams_settings.hpp"

namespace mailroom {

/// A Redis Streams transport's dead-letter stream.
class redis_streams_dlq final : public dead_letter_queue {
public:
  /// The stream `settings` describe (defaults resolved here); idempotency
  /// keys of `scope` under the connection's key prefix.
  redis_streams_dlq(redis_streams_settings settings, dedupe_scope scope);

  std::string describe() const override;
  void for_each(const std::function<bool(const dlq_record&)>& visit) override;
  bool find(const std::string& id, dlq_record& out) override;
  dlq_change replay(const dlq_record& r) override;
  dlq_change remove(const dlq_record& r) override;

private:
  redis_replies checked(redis_replies r, const char* what) const;

  redis_streams_settings settings_;
  dedupe_scope scope_;
  redis_connection connection_;
  redis_script_id replay_script_;
};

} // namespace mailroom
