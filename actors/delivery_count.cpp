#include "actors/delivery_count.hpp"

#include <algorithm>
#include <atomic>

#include <spdlog/spdlog.h>

#include "actors/engine_context.hpp"

namespace mailroom {

namespace {

// One line when the log starts failing and one when it answers again, for
// every lane together.
std::atomic<bool> log_failing{false};

void note(bool ok, const io_result& r) {
  if (!ok && !log_failing.exchange(true)) {
    spdlog::warn("lane: attempt log unavailable ({}); deliveries go uncounted meanwhile",
                 r.what);
  } else if (ok && log_failing.exchange(false)) {
    spdlog::info("lane: attempt log answers again");
  }
}

} // namespace

void count_deliveries(engine_context& ctx, work_batch& items) {
  if (ctx.source->counts_deliveries()) {
    return;
  }
  std::vector<std::string_view> ids;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!items[i].preset && !items[i].requeue) {
      ids.emplace_back(items[i].msg.id);
      where.push_back(i);
    }
  }
  if (ids.empty()) {
    return;
  }
  std::vector<attempt_history> counted;
  auto r = ctx.attempts->deliver(ids, counted);
  note(static_cast<bool>(r), r);
  if (!r) {
    ctx.metrics.store_error(r.failure);
    for (auto i : where) {
      items[i].history_unknown = true;
    }
    return;
  }
  auto limit = ctx.source->delivery_limit();
  for (std::size_t j = 0; j < where.size() && j < counted.size(); ++j) {
    auto& item = items[where[j]];
    auto& h = counted[j];
    item.msg.attempt = std::max(item.msg.attempt, h.deliveries);
    if (!h.errors.empty() || item.msg.attempt_errors.empty()) {
      item.msg.attempt_errors = std::move(h.errors);
      item.msg.first_failure_ms = h.first_failure_ms;
    }
    if (limit > 0 && item.msg.attempt > limit) {
      item.rejected = true;
      item.preset = outcome::dead_letter("delivery count " + std::to_string(item.msg.attempt) +
                                         " exceeds " + std::to_string(limit));
    }
  }
}

void uncount_deliveries(engine_context& ctx, const work_batch& items) {
  if (ctx.source->counts_deliveries() || items.empty()) {
    return;
  }
  std::vector<attempt_history> histories;
  std::vector<attempt_entry> entries;
  histories.reserve(items.size());
  entries.reserve(items.size());
  for (const auto& item : items) {
    if (item.history_unknown || item.msg.attempt == 0) {
      continue;
    }
    histories.push_back({item.msg.attempt - 1, item.msg.attempt_errors,
                         item.msg.first_failure_ms});
  }
  std::size_t h = 0;
  for (const auto& item : items) {
    if (item.history_unknown || item.msg.attempt == 0) {
      continue;
    }
    entries.push_back({item.msg.id, &histories[h++]});
  }
  if (entries.empty()) {
    return;
  }
  auto r = ctx.attempts->record(entries);
  if (!r) {
    ctx.metrics.store_error(r.failure);
    spdlog::warn("lane: could not take back {} delivery counts ({}); they may be dead-lettered "
                 "a delivery early",
                 entries.size(), r.what);
  }
}

} // namespace mailroom
