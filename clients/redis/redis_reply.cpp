#include "clients/redis/redis_reply.hpp"

namespace mailroom {

void redis_reply_deleter::operator()(redisReply* reply) const noexcept {
  freeReplyObject(reply);
}

std::string_view reply_text(const redisReply* reply) {
  if (reply == nullptr) {
    return {};
  }
  switch (reply->type) {
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_ERROR:
    return {reply->str, reply->len};
  default:
    return {};
  }
}

bool is_error_reply(const redisReply* reply) {
  return reply != nullptr && reply->type == REDIS_REPLY_ERROR;
}

bool is_array_of(const redisReply* reply, std::size_t n) {
  return reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == n;
}

} // namespace mailroom
