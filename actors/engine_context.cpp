#include "actors/engine_context.hpp"

#include <algorithm>

#include "actors/handler_lane.hpp"
#include "core/durable_handler.hpp"
#include "stores/memory/memory_attempt_log.hpp"

namespace mailroom {

engine_context::engine_context(engine_config cfg, engine_parts parts)
    : config(std::move(cfg)), source(std::move(parts.transport)),
      idempotency(config.dedupe.enabled ? std::move(parts.idempotency) : nullptr),
      claims(config.sweeper.enabled ? std::move(parts.claims) : nullptr),
      attempts(parts.attempts ? std::move(parts.attempts)
                              : std::make_shared<memory_attempt_log>()),
      handlers(std::move(parts.handlers)),
      mask(config.dead_letter.mask_fields, config.dead_letter.mask_regex,
           config.dead_letter.mask_with, config.dead_letter.on_unparsable),
      queue(config.engine.ordering, config.engine.workers, config.engine.max_in_flight) {
  if (auto terms = source->lease()) {
    leases = std::make_unique<lease_tracker>(*terms);
  }
  if (handlers.has_durable()) {
    auto services = std::make_shared<durable_services>();
    services->store = std::move(parts.checkpoints);
    services->mode = config.steps.mode;
    services->scope = config.dedupe.scope;
    services->metrics = &metrics;
    handlers.wrap_durable(
        [&services](handler_fn fn) { return make_durable(std::move(fn), services); });
  }
  for (std::uint32_t i = 0; i < config.engine.workers; ++i) {
    slots.push_back(std::make_shared<worker_slot>(i));
  }
}

caf::actor engine_context::handle(role r) const {
  std::lock_guard<std::mutex> guard{mutex_};
  return handles_[static_cast<int>(r)];
}

void engine_context::set_handle(role r, caf::actor a) {
  std::lock_guard<std::mutex> guard{mutex_};
  handles_[static_cast<int>(r)] = std::move(a);
}

void engine_context::clear_handles() {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& h : handles_) {
      h = nullptr;
    }
  }
}

void engine_context::register_lane(std::shared_ptr<handler_lane> lane) {
  std::lock_guard<std::mutex> guard{mutex_};
  // Abandoned lanes that have exited are dropped, so repeated timeouts do not
  // grow the list.
  lanes_.erase(std::remove_if(lanes_.begin(), lanes_.end(),
                              [](const auto& l) { return l->exited(); }),
               lanes_.end());
  lanes_.push_back(std::move(lane));
}

void engine_context::release_lanes() {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    lanes_.clear();
  }
  for (auto& slot : slots) {
    slot->set_lane(nullptr);
  }
}

std::vector<std::shared_ptr<handler_lane>> engine_context::lanes() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return lanes_;
}

void engine_context::set_last_sweep(sweep_summary s) {
  std::lock_guard<std::mutex> guard{mutex_};
  last_sweep_ = std::move(s);
}

sweep_summary engine_context::last_sweep() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return last_sweep_;
}

} // namespace mailroom
