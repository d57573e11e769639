#pragma once

// Log lines about one message (a dead-letter, a handler's output) carry their
// facts as fields: readable text by default, separate JSON members when the
// logs are JSON (`log.format = "json"`), so a log pipeline can filter on the
// message id or topic without parsing prose.

#include <initializer_list>
#include <string_view>
#include <utility>

#include <spdlog/common.h>

namespace mailroom {

/// One named fact of a log line.
using log_field = std::pair<std::string_view, std::string_view>;

/// Logs `msg` at `level` with `fields`: "msg (name=value, ...)" as text, or
/// `"msg":"msg","name":"value",...` members in JSON.
void log_event(spdlog::level::level_enum level, std::string_view msg,
               std::initializer_list<log_field> fields);

/// Chooses how log_event renders fields; the JSON log formatter turns on
/// `json` (app/logging.cpp). Default false (text).
void set_structured_logs(bool json);

namespace detail {

/// Marks a payload whose fields are pre-rendered JSON: `\x01<msg>\x02<members>`.
constexpr char fields_begin = '\x01';
constexpr char fields_separator = '\x02';

} // namespace detail

} // namespace mailroom
