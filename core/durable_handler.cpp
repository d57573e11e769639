#include "core/durable_handler.hpp"

#include "core/step_journal.hpp"

namespace mailroom {

namespace {

// The handler's own decision, with exceptions turned into outcomes here so
// that checkpoints are written and compensations run before it leaves.
outcome call_handler(const handler_fn& fn, const envelope& msg, handler_context& hctx,
                     engine_metrics& metrics) {
  try {
    return fn(msg, hctx);
  } catch (const replay_mismatch& e) {
    return outcome::dead_letter(e.what());
  } catch (const step_serialization_error& e) {
    return outcome::dead_letter(e.what());
  } catch (const step_store_failure& e) {
    return outcome::retry(e.what());
  } catch (const step_cancelled& e) {
    return outcome::retry(e.what());
  } catch (const std::exception& e) {
    metrics.handler_error(msg.topic);
    return outcome::retry(std::string{"handler threw: "} + e.what());
  } catch (...) {
    metrics.handler_error(msg.topic);
    return outcome::retry("handler threw a non-standard exception");
  }
}

bool ends_in_dead_letter(const outcome& out, const handler_context& hctx) {
  return out.what == outcome::kind::dead_letter ||
         (out.what == outcome::kind::retry && hctx.final_attempt);
}

outcome run_durable(const handler_fn& fn, const envelope& msg, handler_context& hctx,
                    durable_services& s) {
  step_journal journal{dedupe_key(msg, s.scope), *s.store, s.retry, s.mode, *s.metrics};
  if (auto r = journal.load(); !r) {
    return outcome::retry("checkpoint store: loading the steps failed: " + r.what);
  }
  journal.set_cancel_flag(hctx.cancelled);
  step_scope root{journal, ""};
  hctx.steps = &root;
  auto out = call_handler(fn, msg, hctx, *s.metrics);
  hctx.steps = nullptr;
  if (auto r = journal.flush(); !r) {
    // Nothing may be settled whose steps are not durable; the compensations
    // wait for a delivery that can record them.
    return outcome::retry("checkpoint store: writing " + std::to_string(journal.unwritten()) +
                          " step checkpoints failed: " + r.what);
  }
  if (ends_in_dead_letter(out, hctx)) {
    for (const auto& failure : journal.compensate("")) {
      out.reason += "; " + failure;
    }
    if (auto r = journal.flush(); !r) {
      out.reason += "; a compensation's checkpoint was not written: " + r.what;
    }
  }
  return out;
}

} // namespace

handler_fn make_durable(handler_fn fn, std::shared_ptr<durable_services> services) {
  return [fn = std::move(fn), services = std::move(services)](const envelope& msg,
                                                              handler_context& hctx) {
    return run_durable(fn, msg, hctx, *services);
  };
}

} // namespace mailroom
