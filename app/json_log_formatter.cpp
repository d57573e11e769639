#include "app/json_log_formatter.hpp"

#include "core/log_event.hpp"

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

// Copies an already escaped JSON string body, replacing invalid UTF-8.
void append_valid_utf8(spdlog::memory_buf_t& dest, std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      dest.push_back(s[i++]);
    } else if (std::size_t len = utf8_sequence_length(s, i); len > 0) {
      append(dest, s.substr(i, len));
      i += len;
    } else {
      append(dest, "\\ufffd");
      ++i;
    }
  }
}

// Copies members rendered by log_event, replacing bytes that are not valid
// UTF-8 the way append_escaped does (its quotes and escapes are kept).
void append_members(spdlog::memory_buf_t& dest, std::string_view members) {
  std::string_view rest = members;
  while (!rest.empty()) {
    auto quote = rest.find('"');
    append(dest, rest.substr(0, quote));
    if (quote == std::string_view::npos) {
      return;
    }
    // A JSON string: find its end (a quote not escaped), escape-check inside.
    std::size_t end = quote + 1;
    while (end < rest.size() && rest[end] != '"') {
      end += rest[end] == '\\' ? 2 : 1;
    }
    append(dest, "\"");
    append_valid_utf8(dest, rest.substr(quote + 1, end - quote - 1));
    append(dest, "\"");
    rest = end + 1 < rest.size() ? rest.substr(end + 1) : std::string_view{};
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
  std::string_view payload(msg.payload.data(), msg.payload.size());
  // log_event's pre-rendered fields become members of the object.
  if (!payload.empty() && payload.front() == detail::fields_begin) {
    auto sep = payload.find(detail::fields_separator);
    append_escaped(dest, payload.substr(1, sep == std::string_view::npos
                                               ? std::string_view::npos
                                               : sep - 1));
    append(dest, "\"");
    if (sep != std::string_view::npos && sep + 1 < payload.size()) {
      append(dest, ",");
      append_members(dest, payload.substr(sep + 1));
    }
    append(dest, "}\n");
    return;
  }
  append_escaped(dest, payload);
  append(dest, "\"}\n");
}

std::unique_ptr<spdlog::formatter> json_log_formatter::clone() const {
  return std::make_unique<json_log_formatter>();
}

} // namespace mailroom
