#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace mailroom {

/// Commands to send in one round trip, encoded in RESP as they are added.
///
/// Each command is an array of bulk strings sent with their lengths, so any
/// byte (spaces, `\r\n`, `%`, NUL) in a key or value is data, never syntax:
/// the same argv encoding `redisCommandArgv` does. hiredis does it through
/// a fresh heap string per command that it then copies into its output
/// buffer; encoding a whole batch into one buffer, from arguments the
/// caller does not have to copy first, took a third off the client CPU of
/// a 256-key claim (bench/README.md).
class redis_pipeline {
public:
  /// Appends one command made of `args` (the name first).
  void add(std::initializer_list<std::string_view> args);
  /// Appends one command made of `args` (the name first).
  void add(const std::vector<std::string_view>& args);
  /// Appends one command made of `args` (the name first).
  void add(const std::vector<std::string>& args);

  /// Returns the number of commands added.
  std::size_t size() const { return commands_; }
  /// Returns true when no command was added.
  bool empty() const { return commands_ == 0; }
  /// Returns the encoded commands.
  const std::string& wire() const { return wire_; }

  /// Forgets the commands and keeps the buffer for the next batch.
  void clear();
  /// Reserves `bytes` of buffer, so adding up to that much never moves it
  /// (and leaves no copy of it behind).
  void reserve(std::size_t bytes) { wire_.reserve(bytes); }
  /// Overwrites the buffer with zeros (it held a password) and forgets it.
  /// Copies left by earlier growth are not reached: reserve() first.
  void wipe();

private:
  void add_header(char kind, std::size_t n);
  void add_bulk(std::string_view arg);

  std::string wire_;
  std::size_t commands_ = 0;
};

} // namespace mailroom
