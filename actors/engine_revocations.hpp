#pragma once

// The engine's answer to a transport that gives partitions up (a Kafka
// rebalance): see `revocation_listener`.

#include "core/revocation.hpp"

namespace mailroom {

struct engine_context;

/// Drops what waits of revoked partitions and waits, bounded, for what runs.
class engine_revocations final : public revocation_listener {
public:
  /// Serves revocations for `ctx`, which must outlive it.
  explicit engine_revocations(engine_context& ctx) : ctx_(&ctx) {}

  revocation_report revoke(const std::vector<topic_partition>& partitions,
                           std::chrono::milliseconds wait) override;

private:
  engine_context* ctx_;
};

} // namespace mailroom
