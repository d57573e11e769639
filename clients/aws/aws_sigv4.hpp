#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "clients/aws/aws_credentials.hpp"
#include "clients/aws/aws_request.hpp"

/// AWS Signature Version 4 (header form), as pure functions, each step one
/// function so each can be checked against AWS's test suite.
///
/// The rules are those of services other than S3: the path is normalised
/// (dot segments removed, runs of `/` collapsed) and encoded once more, so
/// a wire path `/a%20b` signs as `/a%2520b`. S3's rules (no normalisation,
/// no second encoding, `x-amz-content-sha256`) are not implemented.
namespace mailroom::sigv4 {

/// The region and service a request is signed for.
struct signing_scope {
  std::string region;  ///< "us-east-1"; any text for ElasticMQ.
  std::string service; ///< "sqs".
};

/// The signed headers of a request in canonical form.
struct canonical_headers {
  /// `name:value\n` per header: names lower case and sorted, values trimmed
  /// with inner runs of white space collapsed to one space, the values of a
  /// repeated name joined by `,` in the order sent.
  std::string text;
  std::string signed_names; ///< The names joined by `;` ("host;x-amz-date").
};

/// Returns `when` as SigV4's basic ISO 8601 time, "20150830T123600Z" (UTC).
std::string amz_date(std::chrono::system_clock::time_point when);

/// Returns `bytes` as lower-case hex, two digits a byte.
std::string hex(std::string_view bytes);

/// Returns the lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// Returns the canonical URI of wire path `path`: "/" when empty, dot
/// segments removed and runs of `/` collapsed (RFC 3986 5.2.4, as AWS's
/// suite expects for services other than S3), then `uri_encode`d keeping `/`.
std::string canonical_uri(std::string_view path);

/// Returns `headers` in canonical form (every header is signed).
canonical_headers canonicalize(const std::vector<aws_field>& headers);

/// Returns the canonical request of `request`: method, canonical URI,
/// canonical query, canonical headers, signed header names and the hex
/// SHA-256 of the payload, one per line.
std::string canonical_request(const aws_request& request);

/// Returns the credential scope "20150830/us-east-1/service/aws4_request"
/// for the time `date` ("20150830T123600Z"; its first 8 characters count).
std::string credential_scope(std::string_view date, const signing_scope& scope);

/// Returns the string to sign: the algorithm, `date`, the credential scope
/// and the hex SHA-256 of `canonical_request`, one per line.
std::string string_to_sign(std::string_view date, const signing_scope& scope,
                           std::string_view canonical_request);

/// Returns the raw (binary, 32-byte) signing key derived from `secret` for
/// the day of `date` and `scope`. The caller wipes it when done.
std::string signing_key(std::string_view secret, std::string_view date,
                        const signing_scope& scope);

/// Returns the hex HMAC-SHA256 of `string_to_sign` with `key`.
std::string signature(std::string_view key, std::string_view string_to_sign);

/// Returns the Authorization header value "AWS4-HMAC-SHA256
/// Credential=ID/SCOPE, SignedHeaders=..., Signature=..." of `request`
/// (which must already carry its X-Amz-Date and any security token header)
/// signed at `date` with `credentials`.
std::string authorization(const aws_request& request, const aws_credentials& credentials,
                          const signing_scope& scope, std::string_view date);

/// Signs `request` at `when`: sets `X-Amz-Date`, `X-Amz-Security-Token`
/// (when `credentials` carry a session token) and `Authorization`,
/// replacing any already there. Every header of `request` is signed, so add
/// `Host` and the others first and add none after.
/// (SQS needs no `x-amz-content-sha256`; S3 would.)
void sign(aws_request& request, const aws_credentials& credentials,
          const signing_scope& scope, std::chrono::system_clock::time_point when);

} // namespace mailroom::sigv4
