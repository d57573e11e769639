#pragma once

#include <string>

#include "core/envelope.hpp"

namespace mailroom {

/// Which messages one idempotency key makes duplicates of.
enum class dedupe_scope {
  topic,  ///< Only messages of the same topic (stream, queue): the default.
  global, ///< Messages of every topic sharing the store.
};

/// Returns the key under which `msg` is claimed, remembered as done and
/// recorded for the sweeper: `consume:<topic>:<key>` for `topic`, the bare
/// idempotency key for `global` (the layout before scopes existed).
inline std::string dedupe_key(const envelope& msg, dedupe_scope scope) {
  if (scope == dedupe_scope::global) {
    return msg.key;
  }
  std::string k;
  k.reserve(9 + msg.topic.size() + msg.key.size());
  k.append("consume:").append(msg.topic).push_back(':');
  k.append(msg.key);
  return k;
}

} // namespace mailroom
