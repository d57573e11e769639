#include "actors/dedupe.hpp"

#include <algorithm>
#include <functional>
#include <spdlog/spdlog.h>

#include "actors/engine_context.hpp"
#include "actors/messages.hpp"

namespace mailroom {

namespace {

struct dedupe_state {
  std::shared_ptr<engine_context> ctx;
  std::vector<std::string_view> keys;
  std::vector<std::string_view> ids;  // asked of the attempt log
  std::vector<std::size_t> asked;     // their places in the batch
  std::vector<std::optional<attempt_history>> histories;
  std::vector<fencing_token> claimed; // per item: the re-dispatched record's token, or 0
  std::vector<char> unknown;          // per batch item: its history could not be loaded
  work_batch items;
  bool history_failing = false;
  bool in_outage = false;
  std::uint64_t outage_total = 0;
  std::uint64_t outage_since_log = 0;
  clock::time_point last_outage_log{};
  static constexpr std::chrono::seconds outage_log_period{5};

  explicit dedupe_state(std::shared_ptr<engine_context> c) : ctx(std::move(c)) {}

  // Redeliveries get their history from the attempt log: their errors, and
  // for a broker that does not count deliveries, the count as well. A log
  // that cannot be asked leaves them as the transport delivered them: the
  // retry budget then starts again, which is better than not delivering.
  // Redeliveries get their history from the attempt log: their errors. A
  // log that cannot be asked leaves them as the transport delivered them,
  // and the retry budget then counts their deliveries. (A broker that does
  // not count deliveries has them counted as a lane starts them:
  // delivery_count.hpp.)
  void load_history(polled_batch& batch) {
    unknown.assign(batch.items.size(), 0);
    if (!ctx->source->counts_deliveries()) {
      return;
    }
    ids.clear();
    asked.clear();
    for (std::size_t i = 0; i < batch.items.size(); ++i) {
      const auto& m = batch.items[i];
      if (m.attempt > 1) {
        ids.emplace_back(m.id);
        asked.push_back(i);
      }
    }
    if (ids.empty()) {
      return;
    }
    if (apply(batch, asked, ctx->attempts->load(ids, histories)) && history_failing) {
      spdlog::info("dedupe: attempt log answers again");
      history_failing = false;
    }
  }

  // Copies the loaded `histories` into the messages at `where`. Returns
  // false when the log failed.
  bool apply(polled_batch& batch, const std::vector<std::size_t>& where, const io_result& r) {
    if (!r) {
      note_history_failure(r);
      for (auto i : where) {
        unknown[i] = 1;
      }
      return false;
    }
    for (std::size_t j = 0; j < where.size() && j < histories.size(); ++j) {
      if (!histories[j]) {
        continue;
      }
      auto& m = batch.items[where[j]];
      m.attempt_errors = std::move(histories[j]->errors);
      m.first_failure_ms = histories[j]->first_failure_ms;
    }
    return true;
  }

  void note_history_failure(const io_result& r) {
    ctx->metrics.store_error(r.failure);
    if (!history_failing) {
      spdlog::warn("dedupe: attempt log unavailable ({}); redeliveries go on without "
                   "their earlier errors",
                   r.what);
    }
    history_failing = true;
  }

  // Sorts a polled batch: poison to the dead-letter actor, deliveries of a
  // revoked partition dropped, the rest claimed; what may run goes to
  // `fresh`, what is settled without running (duplicates, keys in flight,
  // store outage under fail_closed, revoked) to `direct`.
  void classify(polled_batch& batch, work_batch& fresh, work_batch& direct,
                work_batch& poison) {
    auto& cfg = ctx->config.dedupe;
    auto n = batch.items.size();
    auto first_fresh = batch.recovered_tokens.size();
    items.clear();
    items.reserve(n);
    claimed.clear();
    bool keyed = ctx->idempotency || ctx->claims;
    for (std::size_t i = 0; i < n; ++i) {
      // Built in place: a work item is large, and each move copies its
      // envelope's strings' inline buffers.
      auto& item = items.emplace_back();
      item.msg = std::move(batch.items[i]);
      item.epoch = batch.epoch;
      item.history_unknown = i < unknown.size() && unknown[i] != 0;
      if (batch.lease != nullptr && i >= first_fresh) {
        item.lease = batch.lease;
        item.lease_index = static_cast<std::uint32_t>(i - first_fresh);
      }
      if (!item.msg.poison.empty()) {
        item.rejected = true;
        item.preset = outcome::dead_letter(item.msg.poison);
        poison.push_back(std::move(item));
        items.pop_back();
        continue;
      }
      if (ctx->partitions.revoked(item)) {
        item.revoked = true;
        direct.push_back(std::move(item));
        items.pop_back();
        continue;
      }
      if (keyed) {
        item.store_key = dedupe_key(item.msg, cfg.scope);
      }
      claimed.push_back(i < first_fresh ? batch.recovered_tokens[i] : 0);
    }
    n = items.size();
    std::vector<claim_result> claims;
    if (ctx->idempotency && n > 0) {
      keys.clear();
      for (auto& item : items) {
        keys.emplace_back(item.store_key);
      }
      claims = ctx->idempotency->claim(keys, cfg.claim_ttl);
    }
    std::uint64_t unavailable = 0;
    for (std::size_t i = 0; i < n; ++i) {
      auto& item = items[i];
      auto status = claims.empty()      ? claim_result::state::fresh
                    : i < claims.size() ? claims[i].status
                                        : claim_result::state::unavailable;
      switch (status) {
      case claim_result::state::fresh:
        item.token = claims.empty() ? 0 : claims[i].token;
        fresh.push_back(std::move(item));
        continue;
      case claim_result::state::done:
        item.preset = outcome::ok();
        item.duplicate = true;
        break;
      case claim_result::state::in_flight:
        item.requeue = cfg.in_flight_delay;
        break;
      case claim_result::state::unavailable:
        ++unavailable;
        if (cfg.on_store_error == store_failure_policy::fail_open) {
          fresh.push_back(std::move(item));
          continue;
        }
        item.requeue = cfg.store_error_delay;
        break;
      }
      // A re-dispatched record that turned out done or taken is finished
      // with: its old marker must not be swept again.
      if (claimed[i] != 0 && ctx->claims && status == claim_result::state::done) {
        ctx->claims->mark_terminal(item.store_key, claimed[i]);
      }
      direct.push_back(std::move(item));
    }
    if (unavailable > 0) {
      ctx->metrics.store_error(failure_class::transient, unavailable);
    }
    note_outage(unavailable);
  }

  // One line when an outage starts, one per `outage_log_period` while it
  // lasts (with the count since the last line), one when it ends: an outage
  // must be visible without flooding the log with a line per batch.
  void note_outage(std::uint64_t unavailable) {
    auto now = clock::now();
    if (unavailable == 0) {
      if (in_outage) {
        spdlog::warn("dedupe: idempotency store answers again ({} messages were handed "
                     "back or processed unclaimed meanwhile)",
                     outage_total);
        in_outage = false;
      }
      return;
    }
    outage_total += unavailable;
    outage_since_log += unavailable;
    if (!in_outage || now - last_outage_log >= outage_log_period) {
      spdlog::warn("dedupe: idempotency store unavailable for {} messages; {}",
                   outage_since_log,
                   ctx->config.dedupe.on_store_error == store_failure_policy::fail_open
                       ? "processing them unclaimed (fail_open)"
                       : "handing them back (fail_closed)");
      if (!in_outage) {
        outage_total = unavailable;
      }
      in_outage = true;
      last_outage_log = now;
      outage_since_log = 0;
    }
  }

  void record(work_batch& fresh) {
    if (!ctx->claims || fresh.empty()) {
      return;
    }
    auto now = clock::now();
    auto expires = now + ctx->config.dedupe.claim_ttl;
    std::vector<dispatch_record> records;
    records.reserve(fresh.size());
    for (auto& item : fresh) {
      records.push_back({item.msg, item.token, now, expires, item.store_key});
    }
    if (auto r = ctx->claims->record_dispatch(std::move(records)); r) {
      for (auto& item : fresh) {
        item.recorded = true;
      }
    } else {
      // Recovery is a safety net: losing the markers for one batch leaves the
      // transport's own redelivery as the fallback, so dispatch anyway.
      ctx->metrics.store_error(r.failure);
      spdlog::warn("dedupe: writing dispatch markers failed: {}", r.what);
    }
  }

  void on_batch(polled_batch& batch) {
    load_history(batch);
    work_batch fresh, direct, poison;
    fresh.reserve(batch.items.size());
    classify(batch, fresh, direct, poison);
    record(fresh);
    ctx->queue.push(std::move(fresh), batch.items.size());
    ctx->settle.push(std::move(direct));
    if (!poison.empty()) {
      caf::anon_send(ctx->handle(role::dead_letter), park_atom::value,
                     park_batch{std::move(poison)});
    }
  }
};

} // namespace

caf::behavior dedupe_actor(caf::event_based_actor*, std::shared_ptr<engine_context> ctx) {
  auto st = std::make_shared<dedupe_state>(std::move(ctx));
  return {
      [st](batch_atom, polled_batch& batch) {
        try {
          st->on_batch(batch);
        } catch (const std::exception& e) {
          // Nothing may unwind the actor: the batch stays unacked and the
          // transport redelivers it; its room and budget are given back.
          auto n = batch.items.size();
          spdlog::error("dedupe: batch of {} failed: {}", n, e.what());
          for (const auto& msg : batch.items) {
            st->ctx->partitions.leave(msg); // moved-from ones keep their receipt
          }
          st->ctx->queue.push({}, n);
          if (batch.lease != nullptr) {
            batch.lease->release_all(); // or its leases would be renewed for ever
          }
          st->ctx->metrics.deferred.fetch_add(n, std::memory_order_relaxed);
          st->ctx->metrics.leave(static_cast<std::int64_t>(n));
          caf::anon_send(st->ctx->handle(role::supervisor), settled_atom::value,
                         static_cast<std::uint64_t>(n));
        }
      },
  };
}

} // namespace mailroom
