#include "clients/redis/redis_pipeline.hpp"

#include <charconv>
#include <cstring>

namespace mailroom {

void redis_pipeline::add_header(char kind, std::size_t n) {
  char buf[24];
  buf[0] = kind;
  auto end = std::to_chars(buf + 1, buf + sizeof buf - 2, n).ptr;
  *end++ = '\r';
  *end++ = '\n';
  wire_.append(buf, end);
}

void redis_pipeline::add_bulk(std::string_view arg) {
  add_header('$', arg.size());
  wire_.append(arg.data(), arg.size());
  wire_.append("\r\n", 2);
}

void redis_pipeline::add(std::initializer_list<std::string_view> args) {
  add_header('*', args.size());
  for (auto a : args) {
    add_bulk(a);
  }
  ++commands_;
}

void redis_pipeline::add(const std::vector<std::string_view>& args) {
  add_header('*', args.size());
  for (auto a : args) {
    add_bulk(a);
  }
  ++commands_;
}

void redis_pipeline::add(const std::vector<std::string>& args) {
  add_header('*', args.size());
  for (const auto& a : args) {
    add_bulk(a);
  }
  ++commands_;
}

void redis_pipeline::clear() {
  wire_.clear();
  commands_ = 0;
}

void redis_pipeline::wipe() {
  explicit_bzero(wire_.data(), wire_.size());
  std::string{}.swap(wire_);
  commands_ = 0;
}

} // namespace mailroom
