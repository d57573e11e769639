#include "app/json_log_formatter.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string_view>

namespace mailroom {

namespace {

void append(spdlog::memory_buf_t& dest, std::string_view text) {
  dest.append(text.data(), text.data() + text.size());
}

// Returns the length of the valid UTF-8 sequence at `s[i]`, or 0 (RFC 3629).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char lead = byte(i);
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    lo = lead == 0xE0 ? 0xA0 : 0x80;
    hi = lead == 0xED ? 0x9F : 0xBF;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    lo = lead == 0xF0 ? 0x90 : 0x80;
    hi = lead == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (i + len > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) {
    return 0;
  }
  for (std::size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) {
      return 0;
    }
  }
  return len;
}

void append_escaped(spdlog::memory_buf_t& dest, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (std::size_t len = utf8_sequence_length(s, i); len > 0) {
        append(dest, s.substr(i, len));
        i += len;
      } else {
        append(dest, "\\ufffd");
        ++i;
      }
      continue;
    }
    switch (c) {
    case '"':
      append(dest, "\\\"");
      break;
    case '\\':
      append(dest, "\\\\");
      break;
    case '\n':
      append(dest, "\\n");
      break;
    case '\r':
      append(dest, "\\r");
      break;
    case '\t':
      append(dest, "\\t");
      break;
    case '\b':
      append(dest, "\\b");
      break;
    case '\f':
      append(dest, "\\f");
      break;
    default:
      if (c < 0x20 || c == 0x7F) {
        char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        dest.append(esc, esc + sizeof esc);
      } else {
        dest.push_back(static_cast<char>(c));
      }
    }
    ++i;
  }
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
  case spdlog::level::trace:
    return "trace";
  case spdlog::level::debug:
    return "debug";
  case spdlog::level::info:
    return "info";
  case spdlog::level::warn:
    return "warn";
  case spdlog::level::err:
    return "error";
  case spdlog::level::critical:
    return "critical";
  default:
    return "off";
  }
}

} // namespace

void json_log_formatter::format(const spdlog::details::log_msg& msg,
                                spdlog::memory_buf_t& dest) {
  using namespace std::chrono;
  auto since_epoch = duration_cast<milliseconds>(msg.time.time_since_epoch());
  auto second = floor<seconds>(since_epoch);
  auto millis = static_cast<int>((since_epoch - second).count());
  if (second.count() != cached_second_) {
    std::time_t t = static_cast<std::time_t>(second.count());
    std::tm utc{};
    ::gmtime_r(&t, &utc);
    std::strftime(cached_prefix_, sizeof cached_prefix_, "%Y-%m-%dT%H:%M:%S", &utc);
    cached_second_ = second.count();
  }
  append(dest, "{\"time\":\"");
  append(dest, cached_prefix_);
  char frac[] = {'.',
                 static_cast<char>('0' + millis / 100),
                 static_cast<char>('0' + millis / 10 % 10),
                 static_cast<char>('0' + millis % 10),
                 'Z',
                 '"'};
  dest.append(frac, frac + sizeof frac);
  append(dest, ",\"level\":\"");
  append(dest, level_name(msg.level));
  append(dest, "\",\"logger\":\"");
  append_escaped(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
  append(dest, "\",\"msg\":\"");
  append_escaped(dest, std::string_view(msg.payload.data(), msg.payload.size()));
  append(dest, "\"}\n");
}

std::unique_ptr<spdlog::formatter> json_log_formatter::clone() const {
  return std::make_unique<json_log_formatter>();
}

} // namespace mailroom
