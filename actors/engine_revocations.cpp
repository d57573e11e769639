#include "actors/engine_revocations.hpp"

#include <spdlog/spdlog.h>

#include "actors/engine_context.hpp"

namespace mailroom {

revocation_report engine_revocations::revoke(const std::vector<topic_partition>& partitions,
                                             std::chrono::milliseconds wait) {
  revocation_report report;
  if (partitions.empty()) {
    return report;
  }
  auto deadline = clock::now() + wait;
  auto& ledger = ctx_->partitions;
  ledger.revoke(partitions);
  auto held = ledger.held(partitions);
  // What waits for a lane is dropped now; what is on its way through dedupe
  // is dropped there, what a lane took and has not started is dropped by
  // the lane. The settler lets go of their claims and records.
  auto dropped = ctx_->queue.remove_if([&](const work_item& w) { return ledger.revoked(w); });
  for (auto& w : dropped) {
    w.revoked = true;
  }
  report.dropped = dropped.size();
  ctx_->settle.push(std::move(dropped));
  report.unsettled = ledger.wait_until_released(partitions, deadline);
  auto gone = held - std::min(held, report.unsettled);
  report.settled = gone - std::min(gone, report.dropped);
  auto level = report.complete() ? spdlog::level::info : spdlog::level::warn;
  spdlog::log(level,
              "revoked {} partitions: {} waiting deliveries dropped, {} settled, {} still "
              "running after {} ms",
              partitions.size(), report.dropped, report.settled, report.unsettled,
              wait.count());
  return report;
}

} // namespace mailroom
