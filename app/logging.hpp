#pragma once

#include <string>

#include <spdlog/common.h>

namespace mailroom {

/// Parses a log level name: trace, debug, info, warn, error, critical or off.
///
/// Throws std::invalid_argument naming `key` and the bad value, e.g.
/// "log.level: expected one of trace, debug, info, warn, error, critical,
/// off; got 'x'".
spdlog::level::level_enum parse_log_level(const std::string& value,
                                          const std::string& key = "log.level");

/// Checks a log format name: "text" or "json".
///
/// Throws std::invalid_argument naming `key` and the bad value, e.g.
/// "log.format: expected one of text, json; got 'xml'".
void check_log_format(const std::string& value, const std::string& key = "log.format");

/// Makes a stderr logger named "mailroom" the default logger.
///
/// `level` is the configured level (`log.level`); a non-empty environment
/// variable MAILROOM_LOG_LEVEL overrides it. `format` is "text" (a
/// human-readable line, coloured when stderr is a terminal) or "json" (one
/// JSON object per line, see json_log_formatter). The level and format also
/// become spdlog's global ones, so loggers registered later match.
///
/// Everything is validated before anything changes: an unknown level or
/// format throws std::invalid_argument naming the setting (`log.level`,
/// `log.format` or `MAILROOM_LOG_LEVEL`) and the bad value. May be called
/// again to reconfigure; the earlier default logger is replaced.
void configure_logging(const std::string& level, const std::string& format);

} // namespace mailroom
