#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace mailroom::bench {

/// The command line of one `mailroom_bench` subcommand: `--name value` pairs
/// and `--flag` switches after the subcommand name.
///
/// Every getter records the names it was asked for, so `check_unknown()` can
/// reject a misspelt option once the subcommand has read all of its own.
class options {
public:
  /// Parses `argv[first..argc)`. Throws std::invalid_argument on a word that
  /// is not an option.
  options(int argc, char** argv, int first);

  /// Returns the unsigned integer `--name N` (underscores and k/M suffixes
  /// allowed: 2_000_000, 200k, 10M), or `fallback`.
  std::uint64_t u64(const std::string& name, std::uint64_t fallback);

  /// Returns the list `--name a,b,c` of unsigned integers, or `fallback`.
  std::vector<std::uint64_t> u64_list(const std::string& name,
                                      std::vector<std::uint64_t> fallback);

  /// Returns the string `--name S`, or `fallback`.
  std::string str(const std::string& name, const std::string& fallback);

  /// Returns true when the switch `--name` was given (or `--name true|1`).
  bool flag(const std::string& name);

  /// Throws std::invalid_argument naming any option no getter asked for.
  void check_unknown() const;

  /// Returns the options as given, for passing them on to a child process.
  const std::map<std::string, std::string>& given() const { return values_; }

private:
  const std::string* find(const std::string& name);

  std::map<std::string, std::string> values_;
  std::set<std::string> asked_;
};

/// Parses one unsigned integer with optional `_` separators and a k / M / G
/// suffix. Throws std::invalid_argument naming `what` when malformed.
std::uint64_t parse_u64(const std::string& text, const std::string& what);

} // namespace mailroom::bench
