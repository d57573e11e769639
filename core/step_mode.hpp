#pragma once

namespace mailroom {

/// When a handler's durable-step checkpoints are written.
enum class step_mode {
  batch,    ///< Gathered, and written in one call when the handler returns: the default.
  per_step, ///< Each written as soon as its step returned.
};

} // namespace mailroom
