#include "core/log_event.hpp"

#include <atomic>
#include <string>

#include <spdlog/spdlog.h>

namespace mailroom {

namespace {

std::atomic<bool> structured{false};

// JSON string escaping, enough for field values: the formatter re-checks
// UTF-8 when it writes the line.
void append_json_string(std::string& out, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

} // namespace

void set_structured_logs(bool json) {
  structured.store(json, std::memory_order_relaxed);
}

void log_event(spdlog::level::level_enum level, std::string_view msg,
               std::initializer_list<log_field> fields) {
  if (!spdlog::should_log(level)) {
    return;
  }
  std::string line;
  if (structured.load(std::memory_order_relaxed)) {
    line += detail::fields_begin;
    line.append(msg);
    line += detail::fields_separator;
    bool first = true;
    for (const auto& [name, value] : fields) {
      line += first ? "" : ",";
      first = false;
      append_json_string(line, name);
      line += ':';
      append_json_string(line, value);
    }
  } else {
    line.append(msg);
    line += " (";
    bool first = true;
    for (const auto& [name, value] : fields) {
      line += first ? "" : ", ";
      first = false;
      line.append(name).append("=");
      // One record, one line: a value's line breaks are shown, not kept.
      for (char c : value) {
        if (c == '\n') {
          line += "\\n";
        } else if (c == '\r') {
          line += "\\r";
        } else {
          line += c;
        }
      }
    }
    line += ')';
  }
  spdlog::log(level, "{}", line);
}

} // namespace mailroom
