#pragma once

// Deliveries counted where a broker keeps no count (Kafka): a message's
// handler starts are counted in the attempt log as a lane takes it, so a
// message that crashes its consumer every time reaches the transport's
// delivery limit and is dead-lettered instead of looping, while a message
// that only waited (behind its partition, for a key in flight elsewhere)
// is not counted. Free of CAF.

#include "actors/work_item.hpp"

namespace mailroom {

struct engine_context;

/// For a transport that does not count deliveries, counts one more delivery
/// of every item of `items` about to run (no preset outcome, not handed
/// back) in one attempt-log call, gives each its count and history, and
/// presets those over the transport's delivery limit as rejected. Items
/// whose count could not be taken keep what they have and are marked
/// `history_unknown`. Does nothing for transports that count.
void count_deliveries(engine_context& ctx, work_batch& items);

/// Takes back the delivery count_deliveries counted for each of `items`
/// (handed back before its handler started) by storing the history it was
/// given, one delivery less, in one attempt-log call. Items whose count was
/// not taken (`history_unknown`) are skipped; a failure is logged. Does
/// nothing for transports that count.
void uncount_deliveries(engine_context& ctx, const work_batch& items);

} // namespace mailroom
