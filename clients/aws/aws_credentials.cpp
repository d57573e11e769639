#include "clients/aws/aws_credentials.hpp"

#include <cstdlib>
#include <fstream>
#include <map>

#include <openssl/crypto.h>

#include "clients/aws/aws_request.hpp" // ascii_lower, ascii_trim

namespace mailroom {

namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string{value} : std::string{};
}

credentials_result failed(std::string why) {
  return {io_result::fatal("AWS credentials: " + std::move(why)), std::nullopt};
}

std::string default_file() {
  auto file = env_or_empty("AWS_SHARED_CREDENTIALS_FILE");
  if (!file.empty()) {
    return file;
  }
  auto home = env_or_empty("HOME");
  return (home.empty() ? std::string{"."} : home) + "/.aws/credentials";
}

std::string default_profile() {
  auto profile = env_or_empty("AWS_PROFILE");
  return profile.empty() ? "default" : profile;
}

// Reads the key/value pairs of section `[profile]`; false when the section
// is absent. Values stay in this map only as long as the load runs.
bool read_profile(std::ifstream& in, const std::string& profile,
                  std::map<std::string, std::string>& out) {
  bool found = false, inside = false;
  for (std::string line; std::getline(in, line);) {
    auto text = ascii_trim(line);
    if (text.empty() || text.front() == '#' || text.front() == ';') {
      continue;
    }
    if (text.front() == '[' && text.back() == ']') {
      inside = ascii_trim(text.substr(1, text.size() - 2)) == profile;
      found = found || inside;
      continue;
    }
    auto equals = text.find('=');
    if (inside && equals != std::string_view::npos) {
      out[ascii_lower(ascii_trim(text.substr(0, equals)))] =
          std::string{ascii_trim(text.substr(equals + 1))};
    }
  }
  return found;
}

} // namespace

secret_text::secret_text(secret_text&& other) noexcept : value_(std::move(other.value_)) {
  other.wipe();
}

secret_text& secret_text::operator=(const secret_text& other) {
  if (this != &other) {
    wipe();
    value_ = other.value_;
  }
  return *this;
}

secret_text& secret_text::operator=(secret_text&& other) noexcept {
  if (this != &other) {
    wipe();
    value_ = std::move(other.value_);
    other.wipe();
  }
  return *this;
}

secret_text::~secret_text() { wipe(); }

void secret_text::wipe() noexcept {
  if (!value_.empty()) {
    OPENSSL_cleanse(value_.data(), value_.size());
  }
  value_.clear();
}

std::string redact_key_id(std::string_view access_key_id) {
  // Key ids are not secret, but a whole one in every log line helps nobody.
  if (access_key_id.size() < 8) {
    return "…";
  }
  return std::string{access_key_id.substr(0, 4)} + "…" +
         std::string{access_key_id.substr(access_key_id.size() - 3)};
}

std::string aws_credentials::describe() const {
  return "access key " + redact_key_id(access_key_id) + " (from " + origin +
         (session_token.empty() ? ")" : ", session token)");
}

credentials_result credentials_from_environment() {
  auto id = env_or_empty("AWS_ACCESS_KEY_ID");
  secret_text secret{env_or_empty("AWS_SECRET_ACCESS_KEY")};
  if (id.empty()) {
    return failed(secret.empty() ? "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"
                                 : "AWS_ACCESS_KEY_ID is not set "
                                   "(AWS_SECRET_ACCESS_KEY is)");
  }
  if (secret.empty()) {
    return failed("AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)");
  }
  aws_credentials c;
  c.access_key_id = std::move(id);
  c.secret_access_key = std::move(secret);
  c.session_token = secret_text{env_or_empty("AWS_SESSION_TOKEN")};
  c.origin = "env";
  return {io_result::success(), std::move(c)};
}

credentials_result credentials_from_shared_file(const std::string& file,
                                                const std::string& profile) {
  std::ifstream in{file};
  if (!in) {
    return failed("cannot read the shared credentials file " + file);
  }
  std::map<std::string, std::string> keys;
  bool found = read_profile(in, profile, keys);
  struct wipe_on_exit {
    std::map<std::string, std::string>& keys;
    ~wipe_on_exit() {
      for (auto& [name, value] : keys) {
        OPENSSL_cleanse(value.data(), value.size());
      }
    }
  } guard{keys};
  auto where = "profile '" + profile + "' in " + file;
  if (!found) {
    return failed("no " + where);
  }
  for (const char* required : {"aws_access_key_id", "aws_secret_access_key"}) {
    if (keys[required].empty()) {
      return failed(where + " has no " + required);
    }
  }
  aws_credentials c;
  c.access_key_id = keys["aws_access_key_id"];
  c.secret_access_key = secret_text{keys["aws_secret_access_key"]};
  c.session_token = secret_text{keys["aws_session_token"]};
  c.origin = where;
  return {io_result::success(), std::move(c)};
}

credentials_result load_credentials(const aws_credentials_settings& settings) {
  using source = aws_credentials_settings::source;
  auto file = settings.file.empty() ? default_file() : settings.file;
  auto profile = settings.profile.empty() ? default_profile() : settings.profile;
  switch (settings.from) {
  case source::environment:
    return credentials_from_environment();
  case source::shared_file:
    return credentials_from_shared_file(file, profile);
  case source::automatic:
    break;
  }
  if (!env_or_empty("AWS_ACCESS_KEY_ID").empty() ||
      !env_or_empty("AWS_SECRET_ACCESS_KEY").empty()) {
    return credentials_from_environment();
  }
  auto from_file = credentials_from_shared_file(file, profile);
  if (!from_file) {
    from_file.status.what += " (and AWS_ACCESS_KEY_ID is not set)";
  }
  return from_file;
}

} // namespace mailroom
