#include "app/logging.hpp"

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <utility>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "app/json_log_formatter.hpp"
#include "core/log_event.hpp"

namespace mailroom {

namespace {

constexpr const char* text_pattern = "[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v";

} // namespace

spdlog::level::level_enum parse_log_level(const std::string& value,
                                          const std::string& key) {
  using spdlog::level::level_enum;
  static const std::pair<const char*, level_enum> names[] = {
      {"trace", level_enum::trace}, {"debug", level_enum::debug},
      {"info", level_enum::info},   {"warn", level_enum::warn},
      {"error", level_enum::err},   {"critical", level_enum::critical},
      {"off", level_enum::off}};
  for (const auto& [name, level] : names) {
    if (value == name) {
      return level;
    }
  }
  throw std::invalid_argument(
      key + ": expected one of trace, debug, info, warn, error, critical, off; got '" +
      value + "'");
}

void check_log_format(const std::string& value, const std::string& key) {
  if (value != "text" && value != "json") {
    throw std::invalid_argument(key + ": expected one of text, json; got '" + value +
                                "'");
  }
}

void configure_logging(const std::string& level, const std::string& format) {
  check_log_format(format);
  auto lvl = parse_log_level(level);
  if (const char* env = std::getenv("MAILROOM_LOG_LEVEL");
      env != nullptr && *env != '\0') {
    lvl = parse_log_level(env, "MAILROOM_LOG_LEVEL");
  }

  std::shared_ptr<spdlog::logger> logger;
  if (format == "json") {
    // No colour codes: they would end up inside the JSON text.
    logger = std::make_shared<spdlog::logger>(
        "mailroom", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else {
    logger = std::make_shared<spdlog::logger>(
        "mailroom", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  }
  // set_default_logger registers it by name, replacing an earlier "mailroom".
  spdlog::set_default_logger(logger);
  if (format == "json") {
    spdlog::set_formatter(std::make_unique<json_log_formatter>());
  } else {
    spdlog::set_pattern(text_pattern);
  }
  set_structured_logs(format == "json");
  spdlog::set_level(lvl);
}

} // namespace mailroom
