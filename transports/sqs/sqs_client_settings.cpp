#include "transports/sqs/sqs_client_settings.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace mailroom {

sqs_settings client_settings_of(const sqs_transport_settings& s, const std::string& region) {
  using std::chrono::milliseconds;
  sqs_settings out;
  out.endpoint = s.endpoint_url;
  out.region = region;
  out.http.request_timeout = milliseconds{s.request_timeout_ms};
  out.http.connect_timeout = std::min(milliseconds{3000}, out.http.request_timeout);
  return out;
}

aws_credentials credentials_of(const sqs_transport_settings& s) {
  aws_credentials_settings cs;
  cs.profile = s.profile;
  auto loaded = load_credentials(cs);
  if (!loaded) {
    throw std::runtime_error("no AWS credentials for SQS: " + loaded.status.what);
  }
  return std::move(*loaded.credentials);
}

} // namespace mailroom
