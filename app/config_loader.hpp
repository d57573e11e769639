#pragma once

/// Loading, validating and rendering the TOML configuration of the
/// `mailroom` command.

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "app/app_config.hpp"
#include "app/transport_registry.hpp"

namespace mailroom {

/// A configuration problem: unreadable file, TOML syntax error, unknown key,
/// wrong type, value out of range, or keys that contradict each other.
///
/// `what()` reads "KEY: expected …, got …" for problems with one key, and
/// names the file (with line and column for syntax errors) otherwise.
class config_error : public std::runtime_error {
public:
  /// Creates an error about the dotted key path `key` ("engine.workers");
  /// `problem` is what is wrong with it. An empty `key` means the error is
  /// about the file itself and `problem` is the whole message.
  config_error(std::string key, const std::string& problem);

  /// Returns the dotted key path the error is about, or an empty string when
  /// it is about the file (missing, unreadable, bad syntax).
  const std::string& key() const noexcept { return key_; }

private:
  std::string key_;
};

/// Loads the TOML file at `path`, applies `overrides`, and validates the
/// result strictly; returns the effective configuration with `source_file`
/// set to `path`.
///
/// Each override reads "section.key=value" (for example "engine.workers=8",
/// "handlers.orders.type=noop", or "handlers.\"orders.v1\".type=log" for a
/// key with dots). The value is parsed as a TOML value (8, true, "x", [1, 2])
/// and, when that fails, taken as a plain string; where the key expects a
/// string, a value that parsed as another TOML type is taken as its text (so
/// "dead_letter.mask_with=0" works). Overrides are applied in order onto the
/// parsed file before validation, so they obey the same rules as the file.
/// Keys absent from both keep the defaults of `app_config`.
///
/// Throws `config_error` on any problem: a missing or unreadable file (naming
/// the path), a syntax error (naming line and column), a malformed override
/// (its `key()` is the override's text), an unknown key (naming the full
/// dotted key and the closest known one), a wrong type, a value out of range,
/// an invalid dead-letter mask, or keys that contradict each other:
/// `retry.cap_ms` below `retry.base_ms`, `engine.restart_backoff_cap_ms`
/// below `engine.restart_backoff_base_ms`, `source.poison_ratio` plus
/// `source.flaky_ratio` above 1, or `sweeper.stale_cutoff_ms` or
/// `dedupe.claim_ttl_ms` not above `engine.handler_timeout_ms` while that
/// feature is enabled.
///
/// It also reads the environment once: when a store is "redis"
/// (`app_config::uses_redis`) and `redis.password_env` names a variable
/// that is not set, the error is about `redis.password_env` and names the
/// variable (never a value). Whether Redis answers is not checked here.
app_config load_config(const std::string& path, const std::vector<std::string>& overrides,
                       const transport_registry& registry = builtin_transports());

/// Returns `cfg` as TOML text with every declared key, in the form
/// `load_config` reads back. Secrets are redacted: keys declared secret, and
/// the entries of free-form tables (a handler's `env`) whose name looks
/// secret by `is_secret_key`, are shown as "<redacted>".
std::string render_config(const app_config& cfg);

/// Returns true when a key named `name` holds a secret by the rule of
/// `render_config`.
bool is_secret_key(const std::string& name);

/// Returns the word of `known` closest to `word` when it is close enough to
/// be a typo of it ("did you mean"), else an empty string.
std::string closest_word(std::string_view word, const std::vector<std::string>& known);

} // namespace mailroom
