#pragma once

#include <cstdint>
#include <memory>

#include <spdlog/formatter.h>

namespace mailroom {

/// Formats spdlog records as JSON lines, one object per record.
///
/// Each record becomes
/// `{"time":"2026-11-23T02:48:23.123Z","level":"info","logger":"mailroom","msg":"..."}`
/// followed by a newline: time in UTC with milliseconds, level as one of
/// trace, debug, info, warn, error, critical, off (the names `log.level`
/// accepts), the logger's name and the formatted message. Strings are
/// escaped per RFC 8259; control characters become `\uXXXX` (or their short
/// escapes), and bytes that are not valid UTF-8 become U+FFFD, so every line
/// parses as JSON whatever the message holds.
///
/// Like every spdlog formatter an instance belongs to one sink, which calls
/// it under its own lock; `clone` makes the copy each further sink needs.
class json_log_formatter final : public spdlog::formatter {
public:
  /// Appends `msg` to `dest` as one JSON object and a newline.
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;

  /// Returns a new formatter with the same settings.
  std::unique_ptr<spdlog::formatter> clone() const override;

private:
  // The "YYYY-MM-DDTHH:MM:SS" text of the last second formatted, reused
  // while records arrive within the same second.
  std::int64_t cached_second_ = INT64_MIN;
  char cached_prefix_[32] = {};
};

} // namespace mailroom
