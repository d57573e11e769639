#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailroom {

/// A header or query parameter: its name and its value.
using aws_field = std::pair<std::string, std::string>;

/// An HTTP request in the form AWS Signature Version 4 signs and the HTTP
/// client sends: one representation for both, so what is signed is exactly
/// what goes on the wire.
///
/// The scheme, host and port live with the endpoint (see `aws_http_client`);
/// the `Host` header must be among `headers` for signing.
struct aws_request {
  std::string method = "POST"; ///< HTTP method, upper case.
  /// Path as sent on the wire, already percent-encoded ("/" for SQS); empty
  /// means "/".
  std::string path = "/";
  /// Query parameters, decoded; `encoded_query` encodes them for the wire.
  std::vector<aws_field> query;
  /// Headers in the order sent; names in any case; a name may repeat.
  std::vector<aws_field> headers;
  std::string payload; ///< The body, sent byte-exact.

  /// Returns the value of the first header named `name` (any case), or null.
  const std::string* header(std::string_view name) const;

  /// Sets header `name` to `value`, replacing every header of that name
  /// (any case), or appends it when there is none.
  void set_header(std::string_view name, std::string value);

  /// Removes every header named `name` (any case).
  void remove_header(std::string_view name);
};

/// Returns `text` percent-encoded as SigV4 requires: every byte except the
/// unreserved `A-Z a-z 0-9 - _ . ~` (and `/` when `keep_slash`) becomes `%XY`
/// with upper-case hex.
std::string uri_encode(std::string_view text, bool keep_slash);

/// Returns the query string of `query` without the leading `?`: each name
/// and value encoded by `uri_encode`, sorted by encoded name then value,
/// joined as `name=value&...`. The same text is SigV4's canonical query.
std::string encoded_query(const std::vector<aws_field>& query);

/// Returns `text` in lower case (ASCII only, as header names are).
std::string ascii_lower(std::string_view text);

/// Returns `text` without leading and trailing spaces, tabs, CR and LF.
std::string_view ascii_trim(std::string_view text);

} // namespace mailroom
