#pragma once

// Keeping a key's order across a retry, where the transport redelivers a
// retried message in its place (`transport::retries_keep_order`, Kafka): the
// later messages of its key that the engine already holds must not run
// before the retry, so they are handed back unstarted and nacked after it.
// Free of CAF.

#include <string>
#include <vector>

#include "actors/work_item.hpp"

namespace mailroom {

struct engine_context;

/// Returns true when the ordering mode is keyed and the transport keeps
/// retries in their place.
bool keeps_retry_order(const engine_context& ctx);

/// Marks the items of `items` from `first` on that share ordering key `key`
/// (a unit holds a key's messages together, so they follow directly) and
/// are undecided as handed back behind a retry, taking back the delivery
/// each was counted. Returns how many it marked.
std::size_t mark_behind_retry(engine_context& ctx, work_batch& items, std::size_t first,
                              const std::string& key);

/// Removes from the work queue every waiting message of `keys` (call it
/// while the lane still holds those keys) and returns them marked as handed
/// back behind a retry.
work_batch take_behind_retry(engine_context& ctx, const std::vector<std::string>& keys);

} // namespace mailroom
