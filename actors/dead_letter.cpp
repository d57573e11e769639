#include "actors/dead_letter.hpp"

#include <spdlog/spdlog.h>

#include "actors/engine_context.hpp"
#include "actors/messages.hpp"
#include "actors/settlement.hpp"
#include "core/log_event.hpp"
#include "core/unix_time.hpp"
#include "core/log_limiter.hpp"

namespace mailroom {

namespace {

std::string origin_of(const envelope& msg) {
  std::string origin = msg.topic;
  if (msg.handle.partition >= 0) {
    origin += "/" + std::to_string(msg.handle.partition) + "/" +
              std::to_string(msg.handle.offset);
  } else if (!msg.handle.handle.empty()) {
    origin += "/" + msg.handle.handle;
  }
  origin += " id=" + msg.id;
  return origin;
}

struct dead_letter_state {
  caf::event_based_actor* self;
  std::shared_ptr<engine_context> ctx;
  settlement settle;
  retry_policy backoff{retry_settings{std::chrono::milliseconds{100},
                                      std::chrono::milliseconds{10000}, 0}};
  work_batch waiting; // writes that failed, retried on a timer
  std::vector<const envelope*> written_msgs;
  log_limiter limiter{20, std::chrono::milliseconds{5000}};
  std::uint32_t failures = 0;
  bool retry_armed = false;

  dead_letter_state(caf::event_based_actor* s, std::shared_ptr<engine_context> c)
      : self(s), ctx(std::move(c)), settle(*ctx, 0xd1eULL) {}

  void park(work_batch& items) {
    auto now_ms = unix_ms_now();
    work_batch written;
    std::uint64_t stale = 0, rejected = 0;
    auto& m = ctx->metrics;
    for (auto& item : items) {
      dead_letter_record rec;
      rec.reason = item.preset ? item.preset->reason : "dead-lettered";
      rec.attempts = item.msg.attempt;
      rec.errors = item.msg.attempt_errors;
      rec.origin = origin_of(item.msg);
      rec.dead_lettered_at_ms = now_ms;
      rec.first_failure_ms = item.msg.first_failure_ms;
      rec.payload = ctx->mask.apply(item.msg.payload);
      auto r = settle.with_retries(
          "dead-letter write", [&] { return ctx->source->dead_letter(item.msg, rec); });
      if (r && r.stale) {
        // Another delivery of it settled it meanwhile (it was taken over
        // while this write waited out an outage): not dead-lettered twice.
        spdlog::info("not dead-lettering {}: a newer delivery settled it", item.msg.id);
        ++stale;
        m.topics.add(item.msg.topic, topic_counter::fenced);
        written.push_back(std::move(item));
      } else if (r) {
        note_written(item, rec);
        rejected += item.rejected ? 1 : 0;
        if (!item.rejected) {
          m.topics.add(item.msg.topic, topic_counter::dead_lettered);
        }
        written.push_back(std::move(item));
      } else {
        waiting.push_back(std::move(item));
      }
    }
    report_suppressed(false);
    m.dead_lettered.fetch_add(written.size() - stale - rejected, std::memory_order_relaxed);
    m.rejected.fetch_add(rejected, std::memory_order_relaxed);
    m.fenced.fetch_add(stale, std::memory_order_relaxed);
    written_msgs.clear();
    for (const auto& item : written) {
      written_msgs.push_back(&item.msg);
    }
    settle.forget_histories(written_msgs);
    settle.forget(written);
    settle.report_settled(written.size());
    if (!waiting.empty() && !retry_armed) {
      // The destination is down: hold on to the messages (never ack them)
      // and try again with backoff.
      retry_armed = true;
      self->delayed_send(self, backoff.delay(++failures), tick_atom::value);
    } else if (waiting.empty()) {
      failures = 0;
    }
  }

  // Every dead-letter is a warning with its facts, up to 20 per 5 s; past
  // that a summary line per window says how many more there were.
  void note_written(const work_item& item, const dead_letter_record& rec) {
    if (!limiter.allow(clock::now())) {
      return;
    }
    const auto& msg = item.msg;
    auto attempts = std::to_string(rec.attempts);
    log_event(spdlog::level::warn, item.rejected ? "rejected" : "dead-lettered",
              {{"id", msg.id}, {"topic", msg.topic}, {"attempts", attempts},
               {"reason", rec.reason}});
  }

  void report_suppressed(bool force) {
    if (auto n = limiter.take_suppressed(clock::now(), force); n > 0) {
      spdlog::warn("dead-lettered {} more messages not logged one by one (more than 20 in "
                   "{} s); the run summary counts them all",
                   n, limiter.window().count() / 1000);
    }
  }

  void retry_waiting() {
    retry_armed = false;
    auto items = std::move(waiting);
    waiting = work_batch{};
    park(items);
  }

  // Drain deadline: whatever could not be written goes back to the transport.
  void hand_back() {
    report_suppressed(true);
    for (auto& item : waiting) {
      item.requeue = std::chrono::milliseconds{0};
      item.drained = true;
    }
    if (!waiting.empty()) {
      auto items = std::move(waiting);
      waiting = work_batch{};
      ctx->settle.push(std::move(items));
    }
  }
};

} // namespace

caf::behavior dead_letter_actor(caf::event_based_actor* self,
                                std::shared_ptr<engine_context> ctx) {
  auto st = std::make_shared<dead_letter_state>(self, std::move(ctx));
  // What the limiter held back is reported when the actor ends.
  self->attach_functor([st] { st->report_suppressed(true); });
  return {
      [st](park_atom, park_batch& batch) { st->park(batch.items); },
      [st](tick_atom) { st->retry_waiting(); },
      [st](handback_atom) { st->hand_back(); },
  };
}

} // namespace mailroom
