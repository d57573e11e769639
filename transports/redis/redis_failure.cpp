#include "transports/redis/redis_failure.hpp"

#include <array>

#include "clients/redis/redis_reply.hpp"

namespace mailroom {

namespace {

std::string_view code_of(const redisReply* reply) {
  auto text = reply_text(reply);
  return text.substr(0, text.find(' '));
}

} // namespace

bool has_error_code(const redis_replies& r, std::string_view code) {
  for (const auto& reply : r.replies) {
    if (is_error_reply(reply.get()) && code_of(reply.get()) == code) {
      return true;
    }
  }
  return false;
}

io_result streams_failure(const redis_replies& r) {
  if (r.status.failure != failure_class::fatal) {
    return r.status;
  }
  static constexpr std::array<std::string_view, 8> healing{
      "LOADING",     "BUSY",     "TRYAGAIN", "MASTERDOWN",
      "CLUSTERDOWN", "READONLY", "OOM",      "NOGROUP"};
  for (auto code : healing) {
    if (has_error_code(r, code)) {
      return io_result::transient(r.status.what);
    }
  }
  return r.status;
}

} // namespace mailroom
