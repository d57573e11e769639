#pragma once

// Durable steps whose results are typed: any T nlohmann::json can convert
// (to_json / from_json found by ADL), checkpointed as its JSON text.

#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/handler.hpp"

namespace mailroom {

namespace detail {

inline step_scope& steps_of(handler_context& ctx) {
  if (ctx.steps == nullptr) {
    throw std::logic_error("durable steps need a handler registered with add_durable on an "
                           "engine with a checkpoint store");
  }
  return *ctx.steps;
}

template <class T>
std::string to_checkpoint(const std::string& name, const T& value) {
  try {
    return nlohmann::json(value).dump(); // strict: invalid UTF-8 throws
  } catch (const nlohmann::json::exception& e) {
    throw step_serialization_error("step " + name + ": its result cannot be checkpointed: " +
                                   e.what());
  }
}

template <class T>
T from_checkpoint(const std::string& name, const std::string& text) {
  try {
    return nlohmann::json::parse(text).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw step_serialization_error("step " + name +
                                   ": its checkpoint does not read as the step's type: " +
                                   e.what());
  }
}

} // namespace detail

/// Runs a durable step (step_scope::step) in `scope` whose result is a T:
/// `forward()` returns a T, checkpointed as JSON; a later delivery reads it
/// back. A result that cannot be written as JSON, or a checkpoint that does
/// not read as a T (the type changed between deliveries), throws
/// step_serialization_error: the message is dead-lettered.
template <class T, class Forward>
T json_step(step_scope& scope, const std::string& name, Forward&& forward) {
  auto text = scope.step(name, [&] { return detail::to_checkpoint<T>(name, forward()); });
  return detail::from_checkpoint<T>(name, text);
}

/// As json_step(scope, ...) with a compensation given the step's T.
template <class T, class Forward, class Compensate>
T json_step(step_scope& scope, const std::string& name, Forward&& forward,
            Compensate compensate) {
  auto text = scope.step(
      name, [&] { return detail::to_checkpoint<T>(name, forward()); },
      [name, compensate = std::move(compensate)](const std::string& saved) {
        compensate(detail::from_checkpoint<T>(name, saved));
      });
  return detail::from_checkpoint<T>(name, text);
}

/// As json_step(scope, ...) in the handler's root scope.
template <class T, class Forward>
T json_step(handler_context& ctx, const std::string& name, Forward&& forward) {
  return json_step<T>(detail::steps_of(ctx), name, std::forward<Forward>(forward));
}

/// As json_step(scope, ...) with a compensation, in the handler's root scope.
template <class T, class Forward, class Compensate>
T json_step(handler_context& ctx, const std::string& name, Forward&& forward,
            Compensate compensate) {
  return json_step<T>(detail::steps_of(ctx), name, std::forward<Forward>(forward),
                      std::move(compensate));
}

} // namespace mailroom
