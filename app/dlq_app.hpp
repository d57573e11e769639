#pragma once

// `mailroom dlq list | show | replay | purge`: look into the dead-letter
// destination of the configured transport, and replay or purge records by
// id, by reason or all of them (Sidekiq's dead set, Watermill's poison queue
// tooling are what operators know).

#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "app/app_config.hpp"
#include "app/transport_registry.hpp"

namespace mailroom {

/// What one `mailroom dlq` call asks for.
struct dlq_request {
  std::string action;           ///< "list", "show", "replay" or "purge".
  std::vector<std::string> ids; ///< --id (replay, purge) or the ID of show.
  std::string reason;           ///< --reason: an ECMAScript regex searched in the reason.
  std::string since;            ///< --since: Unix ms, or a duration back ("30m", "2h", "7d").
  bool all = false;             ///< --all.
  std::size_t limit = 50;       ///< --limit of list.
  bool json = false;            ///< --json: one JSON object per record.
  bool dry_run = false;         ///< --dry-run of replay: say what would go.
  bool yes = false;             ///< --yes of purge.
};

/// Returns the Unix ms `text` means (see dlq_request::since) relative to
/// `now_ms`, or nullopt when it means nothing.
std::optional<std::int64_t> parse_since(const std::string& text, std::int64_t now_ms);

/// Runs `request` on the DLQ of `cfg`'s transport. Returns the exit code:
/// 0 done, 1 the store failed or a record was not found, 2 bad usage (no
/// filter, a bad regex or time, a transport without a DLQ adapter).
int dlq_app(const app_config& cfg, const transport_registry& registry,
            const dlq_request& request);

} // namespace mailroom
