#include "actors/poller.hpp"

#include <deque>
#include <spdlog/spdlog.h>
#include <unordered_set>

#include "actors/engine_context.hpp"
#include "actors/messages.hpp"
#include "core/retry_policy.hpp"

namespace mailroom {

namespace {

struct poller_state {
  caf::event_based_actor* self;
  std::shared_ptr<engine_context> ctx;
  caf::actor dedupe;
  std::uint64_t credits = 0;
  bool looping = false;
  bool stopped = false;
  std::uint32_t failures = 0;
  retry_policy backoff{
      retry_settings{std::chrono::milliseconds{50}, std::chrono::milliseconds{5000}, 0}};
  std::deque<dispatch_record> recovered;
  std::unordered_set<std::string> recovered_keys;
  topic_tally received; // bound to ctx's counters at spawn

  // Polling as soon as any credit returns would fetch one unit's worth at a
  // time: tiny batches and a store round trip per handful of messages. The
  // poller waits until a real batch fits (or half the budget, if smaller),
  // and no bigger than the queue's target (slow handlers: one per lane).
  std::uint64_t min_poll() const {
    auto& cfg = ctx->config.engine;
    std::uint64_t batch = std::min<std::uint64_t>(cfg.batch_size, cfg.max_in_flight / 8);
    return std::max<std::uint64_t>(1, std::min<std::uint64_t>(batch, ctx->queue.target()));
  }

  // Polls once credits allow a batch and the queue has room for it: work is
  // not taken from the broker long before a lane is ready for it. When the
  // queue is full, the lane that next takes from it sends the poll.
  void loop() {
    if (looping || stopped) {
      return;
    }
    auto threshold = min_poll();
    if (credits >= threshold && ctx->queue.room_or_signal(threshold)) {
      looping = true;
      self->send(self, poll_atom::value);
    }
  }

  void poll_once() {
    looping = false;
    auto threshold = min_poll();
    if (stopped || credits < threshold) {
      return;
    }
    auto room = static_cast<std::uint64_t>(ctx->queue.room());
    if (room < threshold && recovered.empty()) {
      loop(); // arms the queue's signal
      return;
    }
    auto want = std::min<std::uint64_t>(
        {credits, ctx->config.engine.batch_size, std::max(room, threshold)});
    polled_batch batch;
    batch.items.reserve(want);
    // Re-dispatched records go first: they have waited longest.
    while (batch.items.size() < want && !recovered.empty()) {
      auto& rec = recovered.front();
      recovered_keys.erase(rec.filed_under());
      batch.recovered_tokens.push_back(rec.token);
      batch.items.push_back(std::move(rec.message));
      recovered.pop_front();
    }
    auto first_fresh = batch.items.size();
    auto wait =
        first_fresh > 0 ? std::chrono::milliseconds{0} : ctx->config.engine.poll_wait;
    // Stamped before the call: a revocation from inside this poll covers
    // every delivery of an earlier one.
    batch.epoch = ctx->partitions.begin_poll();
    io_result r;
    try {
      r = ctx->source->poll(want - first_fresh, wait, batch.items);
    } catch (const std::exception& e) {
      r = io_result::fatal(std::string{"poll threw: "} + e.what());
    }
    if (!r) {
      ctx->metrics.transport_error(r.failure);
      ctx->metrics.polls_failing.fetch_add(1, std::memory_order_relaxed);
      if (r.failure == failure_class::fatal) {
        // Retrying here would hide it: the poller stops with the reason, the
        // supervisor restarts it, and gives up on the run if it keeps failing.
        spdlog::error("poller: {} poll failed for good: {}", ctx->source->name(), r.what);
      } else {
        auto delay = backoff.delay(++failures);
        // One line per failure streak step, not per poll: an outage must not
        // flood the log.
        spdlog::warn("poller: {} poll failed ({}); retrying in {} ms",
                     ctx->source->name(), r.what, delay.count());
        looping = true;
        self->delayed_send(self, delay, poll_atom::value);
      }
    } else {
      ctx->metrics.polls_failing.store(0, std::memory_order_relaxed);
      if (failures > 0) {
        spdlog::info("poller: {} answers again after {} failed polls", ctx->source->name(),
                     failures);
        failures = 0;
      }
    }
    auto now = clock::now();
    for (auto& msg : batch.items) {
      msg.received = now;
    }
    if (ctx->leases) {
      batch.lease = ctx->leases->open(batch.items, first_fresh, now);
    }
    auto n = batch.items.size();
    ctx->partitions.enter(batch.items);
    ctx->queue.reserve(n);
    if (n > 0) {
      credits -= n;
      ctx->metrics.enter(static_cast<std::int64_t>(n));
      ctx->metrics.polled.fetch_add(n - first_fresh, std::memory_order_relaxed);
      ctx->metrics.recovered.fetch_add(first_fresh, std::memory_order_relaxed);
      for (const auto& msg : batch.items) {
        received.add(msg.topic, topic_counter::received);
      }
      received.flush();
      self->send(dedupe, batch_atom::value, std::move(batch));
    }
    if (r.failure == failure_class::fatal) {
      self->quit(caf::make_error(caf::sec::runtime_error, r.what));
      return;
    }
    if (r) {
      loop();
    }
  }

  void add_recovered(std::vector<dispatch_record>& records) {
    for (auto& rec : records) {
      if (recovered_keys.insert(rec.filed_under()).second) {
        recovered.push_back(std::move(rec));
      }
    }
    loop();
  }
};

} // namespace

caf::behavior poller_actor(caf::event_based_actor* self,
                           std::shared_ptr<engine_context> ctx, caf::actor dedupe) {
  auto st = std::make_shared<poller_state>();
  st->self = self;
  st->ctx = std::move(ctx);
  st->received = topic_tally{&st->ctx->metrics.topics};
  st->dedupe = std::move(dedupe);
  return {
      [st](poll_atom) { st->poll_once(); },
      [st](credit_atom, std::uint64_t n) {
        st->credits += n;
        st->loop();
      },
      [st](recover_atom, std::vector<dispatch_record>& records) {
        st->add_recovered(records);
      },
      [st](drain_atom) {
        st->stopped = true;
        st->self->quit();
      },
  };
}

} // namespace mailroom
