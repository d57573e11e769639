#include "clients/redis/redis_settings_schema.hpp"

#include <algorithm>
#include <cctype>

namespace mailroom {

namespace {

// What the shell and `env` accept as a variable name; anything else in
// `password_env` is more likely the password itself than a name.
bool is_env_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

} // namespace

const settings_schema<redis_settings>& redis_settings_schema() {
  using S = redis_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.text("host", &S::host, "Server host name or address",
           plain_text("a non-empty host name or address without NUL", true))
        .integer("port", &S::port, 1, 65535, "Server TCP port")
        .integer("db", &S::db, 0, INT32_MAX, "Database index chosen with SELECT")
        .text("username", &S::username, "ACL user; empty: the default user",
              plain_text("a user name without NUL"))
        .text("password_env", &S::password_env,
              "NAME of the environment variable holding the password",
              [](const std::string& v) -> setting_rejection {
                if (v.empty() || is_env_name(v)) {
                  return {};
                }
                // Not echoed: a value that is no variable name may be the
                // password itself.
                return {"the NAME of the environment variable holding the password "
                        "(letters, digits and _, not starting with a digit), or \"\" for "
                        "none",
                        "a value that is not such a name (not shown: it may be the "
                        "password itself)",
                        true};
              })
        .duration("connect_timeout_ms", &S::connect_timeout, 1, "TCP connect bound")
        .duration("command_timeout_ms", &S::command_timeout, 1,
                  "Bound of each socket read or write of a command")
        .boolean("keep_alive", &S::keep_alive, "TCP keep-alive")
        .text("key_prefix", &S::key_prefix, "Prefix of every key a store writes");
    return s;
  }();
  return schema;
}

} // namespace mailroom
