#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/io_result.hpp"

namespace mailroom {

/// Text that must never be printed: it has no `operator<<` nor conversion
/// to a string, and its bytes are wiped when it is destroyed or replaced.
/// `reveal()` is the one way to read it, so every reader is easy to find.
class secret_text {
public:
  /// Creates an empty secret.
  secret_text() = default;
  /// Takes `value` as the secret.
  explicit secret_text(std::string value) : value_(std::move(value)) {}
  /// Copies the secret.
  secret_text(const secret_text& other) = default;
  /// Takes the secret of `other`, leaving it empty.
  secret_text(secret_text&& other) noexcept;
  /// Wipes the current secret and copies `other`'s.
  secret_text& operator=(const secret_text& other);
  /// Wipes the current secret and takes `other`'s.
  secret_text& operator=(secret_text&& other) noexcept;
  /// Wipes the secret.
  ~secret_text();

  /// Returns the secret itself: only for signing, never for text a person reads.
  std::string_view reveal() const { return value_; }
  /// Returns true when there is no secret.
  bool empty() const { return value_.empty(); }

private:
  void wipe() noexcept;
  std::string value_;
};

/// AWS credentials: an access key and, for temporary credentials, a session
/// token. Only `describe()` is meant for logs and error texts.
struct aws_credentials {
  std::string access_key_id;     ///< The access key id ("AKIA..."); not secret.
  secret_text secret_access_key; ///< Signs requests; never printed.
  secret_text session_token;     ///< Temporary credentials only; empty: none.
  /// Where they came from, for `describe()`: "env", "profile 'p' in FILE",
  /// "given" for credentials built in code.
  std::string origin = "given";

  /// Returns a description safe for logs, "access key AKID…PLE (from env)",
  /// with ", session token" when there is one; never the secret or token.
  std::string describe() const;
};

/// Returns `access_key_id` shortened for logs: its first 4 and last 3
/// characters around "…" ("AKID…PLE"); "…" alone when it has fewer than 8.
std::string redact_key_id(std::string_view access_key_id);

/// Where `load_credentials` looks. Every field has its default beside it;
/// secrets are never part of the settings.
struct aws_credentials_settings {
  /// Which source to read.
  enum class source {
    automatic,   ///< The environment when AWS_ACCESS_KEY_ID is set, else the file.
    environment, ///< AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
    shared_file, ///< A profile of the shared credentials file.
  };
  source from = source::automatic; ///< The source read.
  /// Profile in the shared file; empty: $AWS_PROFILE, else "default".
  std::string profile;
  /// Shared credentials file; empty: $AWS_SHARED_CREDENTIALS_FILE, else
  /// $HOME/.aws/credentials.
  std::string file;
};

/// What loading credentials answers: a status and, on success, the credentials.
struct credentials_result {
  /// `fatal` with the missing variable, file, profile or key named (never a
  /// value) when they cannot be loaded.
  io_result status;
  std::optional<aws_credentials> credentials; ///< Set on success.

  /// Returns true when credentials were loaded.
  explicit operator bool() const { return static_cast<bool>(status); }
};

/// Loads credentials from the source `settings` choose.
credentials_result load_credentials(const aws_credentials_settings& settings);

/// Loads credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the
/// optional AWS_SESSION_TOKEN; an empty variable counts as unset.
credentials_result credentials_from_environment();

/// Loads profile `profile` of the shared credentials file `file` (INI:
/// `[profile]` sections of `aws_access_key_id`, `aws_secret_access_key`
/// and the optional `aws_session_token`; `#` and `;` start comments).
credentials_result credentials_from_shared_file(const std::string& file,
                                                const std::string& profile);

} // namespace mailroom
