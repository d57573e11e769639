#include "app/app_config_schema.hpp"

#include "app/exec_handler.hpp"

namespace mailroom {

namespace {

// What `env` accepts as a variable name of a handler's environment.
setting_rejection env_name(const std::string& name) {
  if (name.empty() || name.find('=') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return {"an environment variable name without '='", {}, false};
  }
  return {};
}

} // namespace

const settings_schema<log_settings>& log_schema() {
  using S = log_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.choice("level", &S::level,
             {"trace", "debug", "info", "warn", "error", "critical", "off"},
             "Lowest level written (MAILROOM_LOG_LEVEL wins)")
        .choice("format", &S::format, {"text", "json"},
                "Line format: text, or one JSON object per line");
    return s;
  }();
  return schema;
}

const settings_schema<progress_settings>& progress_schema() {
  using S = progress_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.boolean("enabled", &S::enabled, "Print progress lines")
        .duration("interval_ms", &S::interval, 1, "Shortest time between two lines")
        .duration("heartbeat_ms", &S::heartbeat, 1,
                  "Longest time between two lines while nothing changes");
    return s;
  }();
  return schema;
}

std::optional<std::pair<std::string, int>> split_listen_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return std::nullopt;
  }
  auto port_text = text.substr(colon + 1);
  if (port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  int port = std::stoi(port_text);
  if (port > 65535) {
    return std::nullopt;
  }
  auto host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2); // [::1]:9464
  }
  return std::make_pair(host, port);
}

const settings_schema<http_settings>& http_schema() {
  using S = http_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.text("listen", &S::listen,
           "host:port of /metrics, /healthz and /readyz; empty: off",
           [](const std::string& v) -> setting_rejection {
             if (v.empty() || split_listen_address(v)) {
               return {};
             }
             return {"host:port (for example \"127.0.0.1:9464\"), or \"\" for off", {}, false};
           })
        .duration("probe_timeout_ms", &S::probe_timeout, 1,
                  "Longest wait for a store's answer to a /readyz probe");
    return s;
  }();
  return schema;
}

const settings_schema<handler_spec>& handler_schema() {
  using S = handler_spec;
  static const auto schema = [] {
    settings_schema<S> s;
    s.choice("type", &S::type, {"demo", "noop", "log", "exec", "exec_batch"},
             "Built-in handler kind")
        .duration<std::chrono::microseconds>("latency_us", &S::latency, 0,
                                             "Simulated work per message of the demo handler")
        .texts("command", &S::command, "Program and arguments of the exec handler",
               plain_text("strings without NUL"))
        .text_table("env", &S::env, "Extra environment variables of the exec handler",
                    env_name)
        .boolean("env_clear", &S::env_clear,
                 "Start the exec handler's child from an empty environment")
        .integer("batch_max", &S::batch_max, 1, 10000,
                 "Most messages in one call of the exec_batch handler")
        .duration("batch_window_ms", &S::batch_window, 0,
                  "Longest wait for more messages once a batch has its first")
        .rule([](const S& h) -> std::vector<setting_problem> {
          if (h.type != "exec" && h.type != "exec_batch") {
            return {};
          }
          if (h.command.empty()) {
            return {{"command",
                     "a non-empty array of strings (program and arguments) for type "
                     "\"" + h.type + "\"",
                     "[]"}};
          }
          if (h.command.front().empty()) {
            return {{"command", "a program as the first element", "\"\""}};
          }
          // A typo here used to dead-letter every message and exit 0.
          if (auto why = check_exec_command(h.command.front()); !why.empty()) {
            return {{"command", "an executable program as the first element",
                     shown_value(h.command.front()) + " (" + why + ")"}};
          }
          return {};
        });
    return s;
  }();
  return schema;
}

const settings_schema<source_settings>& source_schema() {
  using S = source_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.choice("type", &S::type, {"generator", "none"},
             "Where messages come from: the generator, or the transport alone");
    return s;
  }();
  return schema;
}

const settings_schema<generator_settings>& generator_schema() {
  using S = generator_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.integer("messages", &S::messages, 0, INT64_MAX, "Messages to publish")
        .ratio("duplicate_ratio", &S::duplicate_ratio, "Share of repeated keys")
        .ratio("poison_ratio", &S::poison_ratio, "Share of malformed payloads")
        .ratio("flaky_ratio", &S::flaky_ratio, "Share of first-attempt failures")
        // A generated payload is copied a few times inside the engine: 16 MiB
        // keeps a run of them within a few hundred MiB.
        .integer("payload_bytes", &S::payload_bytes, 0, 16u << 20, "Approximate payload size")
        .texts("topics", &S::topics, "Topics the messages are spread over",
               [](const std::string& t) -> setting_rejection {
                 return t.empty() ? setting_rejection{"non-empty topic names", {}, false}
                                  : setting_rejection{};
               })
        .integer("seed", &S::seed, 0, INT64_MAX, "Seed of the deterministic draw")
        .rule([](const S& g) -> std::vector<setting_problem> {
          std::vector<setting_problem> out;
          if (g.topics.empty()) {
            out.push_back({"topics", "a non-empty array of strings", "[]"});
          }
          if (g.poison_ratio + g.flaky_ratio > 1.0) {
            out.push_back({"flaky_ratio",
                           "at most 1 - source.poison_ratio (" +
                               format_number(1.0 - g.poison_ratio) + ")",
                           format_number(g.flaky_ratio)});
          }
          return out;
        });
    return s;
  }();
  return schema;
}

} // namespace mailroom
