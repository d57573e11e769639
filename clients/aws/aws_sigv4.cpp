#include "clients/aws/aws_sigv4.hpp"

#include <algorithm>
#include <ctime>
#include <map>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace mailroom::sigv4 {

namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size);
  std::string result{reinterpret_cast<const char*>(out), size};
  OPENSSL_cleanse(out, sizeof out);
  return result;
}

void wipe(std::string& text) {
  OPENSSL_cleanse(text.data(), text.size());
  text.clear();
}

// Trims and collapses inner runs of spaces and tabs to one space.
std::string canonical_value(std::string_view value) {
  std::string out;
  bool in_space = false;
  for (char c : value) {
    bool space = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    if (space) {
      in_space = !out.empty();
      continue;
    }
    if (in_space) {
      out += ' ';
      in_space = false;
    }
    out += c;
  }
  return out;
}

// RFC 3986 5.2.4 plus AWS's collapsing of empty segments.
std::string normalized_path(std::string_view path) {
  std::vector<std::string_view> segments;
  std::string_view last;
  for (std::size_t begin = 0; begin <= path.size();) {
    auto end = std::min(path.find('/', begin), path.size());
    last = path.substr(begin, end - begin);
    if (last == "..") {
      if (!segments.empty()) {
        segments.pop_back();
      }
    } else if (!last.empty() && last != ".") {
      segments.push_back(last);
    }
    begin = end + 1;
  }
  std::string out;
  for (auto segment : segments) {
    out += '/';
    out += segment;
  }
  // A directory stays a directory: "/a/" and "/a/." keep their slash.
  bool directory = last.empty() || last == "." || last == "..";
  if (out.empty() || directory) {
    out += '/';
  }
  return out;
}

} // namespace

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0x0F];
  }
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point when) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[sizeof "20150830T123600Z"];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return hex({reinterpret_cast<const char*>(digest), size});
}

std::string canonical_uri(std::string_view path) {
  return uri_encode(normalized_path(path), true);
}

canonical_headers canonicalize(const std::vector<aws_field>& headers) {
  std::map<std::string, std::string> joined; // sorted by lower-case name
  for (const auto& [name, value] : headers) {
    auto [it, fresh] = joined.try_emplace(ascii_lower(name), canonical_value(value));
    if (!fresh) {
      it->second += ',' + canonical_value(value);
    }
  }
  canonical_headers out;
  for (const auto& [name, value] : joined) {
    out.text += name + ':' + value + '\n';
    out.signed_names += (out.signed_names.empty() ? "" : ";") + name;
  }
  return out;
}

std::string canonical_request(const aws_request& request) {
  auto headers = canonicalize(request.headers);
  return request.method + '\n' + canonical_uri(request.path) + '\n' +
         encoded_query(request.query) + '\n' + headers.text + '\n' + headers.signed_names +
         '\n' + sha256_hex(request.payload);
}

std::string credential_scope(std::string_view date, const signing_scope& scope) {
  return std::string{date.substr(0, 8)} + '/' + scope.region + '/' + scope.service +
         "/aws4_request";
}

std::string string_to_sign(std::string_view date, const signing_scope& scope,
                           std::string_view canonical_request) {
  return std::string{algorithm} + '\n' + std::string{date} + '\n' +
         credential_scope(date, scope) + '\n' + sha256_hex(canonical_request);
}

std::string signing_key(std::string_view secret, std::string_view date,
                        const signing_scope& scope) {
  std::string key = "AWS4" + std::string{secret};
  for (std::string_view part : {date.substr(0, 8), std::string_view{scope.region},
                                std::string_view{scope.service},
                                std::string_view{"aws4_request"}}) {
    auto next = hmac(key, part);
    wipe(key);
    key = std::move(next);
  }
  return key;
}

std::string signature(std::string_view key, std::string_view string_to_sign) {
  auto mac = hmac(key, string_to_sign);
  return hex(mac);
}

std::string authorization(const aws_request& request, const aws_credentials& credentials,
                          const signing_scope& scope, std::string_view date) {
  auto sts = string_to_sign(date, scope, canonical_request(request));
  auto key = signing_key(credentials.secret_access_key.reveal(), date, scope);
  auto sig = signature(key, sts);
  wipe(key);
  return std::string{algorithm} + " Credential=" + credentials.access_key_id + '/' +
         credential_scope(date, scope) +
         ", SignedHeaders=" + canonicalize(request.headers).signed_names +
         ", Signature=" + sig;
}

void sign(aws_request& request, const aws_credentials& credentials,
          const signing_scope& scope, std::chrono::system_clock::time_point when) {
  auto date = amz_date(when);
  request.set_header("X-Amz-Date", date);
  if (!credentials.session_token.empty()) {
    request.set_header("X-Amz-Security-Token",
                       std::string{credentials.session_token.reveal()});
  }
  // A previous Authorization must not be signed into the new one.
  request.remove_header("Authorization");
  request.set_header("Authorization", authorization(request, credentials, scope, date));
}

} // namespace mailroom::sigv4
