#pragma once

#include <cstdlib>
#include <string>

namespace mailroom::testing {

/// Sets an environment variable for the scope (children spawned meanwhile
/// inherit it through `environ`) and unsets it after.
class scoped_env {
public:
  scoped_env(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~scoped_env() { ::unsetenv(name_.c_str()); }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

private:
  std::string name_;
};

} // namespace mailroom::testing
