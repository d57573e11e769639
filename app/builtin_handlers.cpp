#include "app/builtin_handlers.hpp"

#include <algorithm>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace mailroom {

namespace {

// --- demo -------------------------------------------------------------------

std::string parse_error_text(const std::string& payload) {
  try {
    [[maybe_unused]] auto doc = nlohmann::json::parse(payload);
  } catch (const nlohmann::json::exception& e) {
    std::string_view what = e.what();
    // Drop the "[json.exception.parse_error.101] " prefix.
    if (auto end = what.find("] ");
        !what.empty() && what[0] == '[' && end != std::string_view::npos) {
      what.remove_prefix(end + 2);
    }
    return std::string(what);
  }
  return "invalid JSON";
}

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Returns -1 when the payload has no non-negative integer "fail_attempts".
long long fail_attempts(const std::string& payload) {
  static constexpr std::string_view key = "\"fail_attempts\"";
  auto pos = payload.find(key.data(), 0, key.size());
  if (pos == std::string::npos) {
    return -1;
  }
  std::size_t i = pos + key.size();
  while (i < payload.size() && is_json_space(payload[i])) {
    ++i;
  }
  if (i >= payload.size() || payload[i] != ':') {
    return -1;
  }
  ++i;
  while (i < payload.size() && is_json_space(payload[i])) {
    ++i;
  }
  long long n = 0;
  std::size_t digits = 0;
  for (; i < payload.size() && payload[i] >= '0' && payload[i] <= '9'; ++i, ++digits) {
    n = std::min<long long>(n * 10 + (payload[i] - '0'), 1'000'000'000LL);
  }
  if (digits == 0 || (i < payload.size() &&
                      (payload[i] == '.' || payload[i] == 'e' || payload[i] == 'E'))) {
    return -1;
  }
  return n;
}

outcome demo(const envelope& msg, handler_context& ctx,
             std::chrono::microseconds latency) {
  if (latency.count() > 0) {
    constexpr auto slice = std::chrono::milliseconds{5};
    auto until = clock::now() + latency;
    for (auto now = clock::now(); now < until; now = clock::now()) {
      if (ctx.is_cancelled()) {
        return outcome::retry("cancelled");
      }
      std::this_thread::sleep_for(std::min<clock::duration>(
          until - now, std::chrono::duration_cast<clock::duration>(slice)));
    }
  }
  if (!nlohmann::json::accept(msg.payload)) {
    return outcome::dead_letter("malformed JSON payload: " +
                                parse_error_text(msg.payload));
  }
  if (auto n = fail_attempts(msg.payload); n >= 0 && ctx.attempt <= n) {
    return outcome::retry("simulated transient failure");
  }
  return outcome::ok();
}

} // namespace

handler_fn make_noop_handler() {
  return [](const envelope&, handler_context&) { return outcome::ok(); };
}

handler_fn make_log_handler() {
  return [](const envelope& msg, handler_context& ctx) {
    spdlog::info("message topic={} key={} id={} attempt={} payload_bytes={}", msg.topic,
                 msg.key, msg.id, ctx.attempt, msg.payload.size());
    return outcome::ok();
  };
}

handler_fn make_demo_handler() {
  return make_demo_handler(std::chrono::microseconds{0});
}

handler_fn make_demo_handler(std::chrono::microseconds latency) {
  return [latency](const envelope& msg, handler_context& ctx) {
    return demo(msg, ctx, latency);
  };
}

} // namespace mailroom
