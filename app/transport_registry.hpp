#pragma once

// The transports `mailroom run` knows, by `transport.type`: for each, its
// settings (the [transport.<type>] table), the rules its settings obey when
// it is the one selected, and how to build it. Adding a transport to the
// command is one registration (app/builtin_transports.cpp); run_app has no
// branch per transport.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dead_letter_queue.hpp"
#include "app/settings_box.hpp"
#include "core/attempt_log.hpp"
#include "core/engine_config.hpp"
#include "core/transport.hpp"

namespace mailroom {

struct app_config;

/// Something that feeds a transport while the engine runs (the generator
/// feeding the memory transport).
class run_source {
public:
  virtual ~run_source() = default;
  /// Starts feeding.
  virtual void start() = 0;
  /// Asks it to stop early (a signal arrived).
  virtual void stop() = 0;
  /// Waits until it stopped.
  virtual void join() = 0;
};

/// A built transport, and what feeds it (none for a broker).
struct transport_instance {
  std::shared_ptr<mailroom::transport> transport; ///< The transport.
  std::unique_ptr<run_source> source;             ///< Null for a broker.
  /// Where its messages' attempt histories are kept when it has a natural
  /// home for them (the Redis server of a Redis stream); null lets the
  /// command choose (Redis when the dedupe store is, else in memory).
  std::shared_ptr<attempt_log> attempts;
  /// The ordering the engine takes when `engine.ordering` is left unordered
  /// (Kafka: per_partition); none keeps the engine's.
  std::optional<ordering_mode> ordering;
};

/// One transport kind the command can run.
struct transport_kind {
  /// Its `transport.type` value, and the name of its [transport.<name>] table.
  std::string name;
  /// Returns its settings with their defaults.
  std::function<std::unique_ptr<settings_box>()> settings;
  /// Returns the problems of its settings when it is selected (keys relative
  /// to its table), given the whole configuration.
  std::function<std::vector<setting_problem>(const settings_box&, const app_config&)>
      problems;
  /// Builds it from its settings and the whole configuration. Throws
  /// std::runtime_error with a clear message when it cannot start (the
  /// broker is unreachable, the group cannot be created).
  std::function<transport_instance(const settings_box&, const app_config&)> create;
  /// Returns lines `validate` prints about what the transport makes of its
  /// settings (a client's effective properties, secrets redacted); optional.
  std::function<std::vector<std::string>(const settings_box&, const app_config&)> describe;
  /// Opens its dead-letter destination for `mailroom dlq`; empty when the
  /// transport has none an operator can reach from another process.
  std::function<std::unique_ptr<dead_letter_queue>(const settings_box&, const app_config&)>
      open_dlq;
  /// Whether the `[source]` generator can feed it (only the memory
  /// transport); for the others `source.type` must be "none".
  bool feeds_generator = false;
};

/// The transports known to one command.
class transport_registry {
public:
  /// Adds `kind`, replacing one of the same name.
  void add(transport_kind kind);

  /// Returns the kind named `name`, or nullptr.
  const transport_kind* find(const std::string& name) const;

  /// Returns the names, in registration order.
  std::vector<std::string> names() const;

  /// Names a transport mailroom knows but this binary was built without
  /// (say so when a configuration asks for it).
  void add_unavailable(std::string name, std::string why);

  /// Returns why `name` is not available, or an empty string.
  std::string unavailable(const std::string& name) const;

  /// Returns every kind.
  const std::vector<transport_kind>& kinds() const { return kinds_; }

private:
  std::vector<transport_kind> kinds_;
  std::vector<std::pair<std::string, std::string>> unavailable_;
};

/// Returns the transports built into this binary (memory always; Redis
/// Streams, Kafka and SQS when compiled in).
const transport_registry& builtin_transports();

} // namespace mailroom
