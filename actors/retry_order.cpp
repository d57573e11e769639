#include "actors/retry_order.hpp"

#include "actors/delivery_count.hpp"
#include "actors/engine_context.hpp"

namespace mailroom {

namespace {

void mark(work_item& item) {
  item.requeue = std::chrono::milliseconds{0};
  item.behind_retry = true;
}

} // namespace

bool keeps_retry_order(const engine_context& ctx) {
  return ctx.queue.keyed() && ctx.source->retries_keep_order();
}

std::size_t mark_behind_retry(engine_context& ctx, work_batch& items, std::size_t first,
                              const std::string& key) {
  work_batch counted;
  for (auto j = first; j < items.size() && ctx.queue.key_of(items[j].msg) == key; ++j) {
    auto& later = items[j];
    if (later.preset || later.requeue) {
      continue; // decided without its handler (a duplicate, a rejected poison)
    }
    mark(later);
    counted.push_back(later);
  }
  uncount_deliveries(ctx, counted);
  return counted.size();
}

work_batch take_behind_retry(engine_context& ctx, const std::vector<std::string>& keys) {
  auto waiting = ctx.queue.remove_keys(keys);
  for (auto& w : waiting) {
    mark(w);
  }
  return waiting;
}

} // namespace mailroom
