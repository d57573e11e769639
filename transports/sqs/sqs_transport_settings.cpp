#include "transports/sqs/sqs_transport_settings.hpp"

#include <cstdlib>

namespace mailroom {

std::string effective_region(const sqs_transport_settings& s) {
  if (!s.region.empty()) {
    return s.region;
  }
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') {
      return v;
    }
  }
  return s.endpoint_url.empty() ? std::string{} : std::string{"us-east-1"};
}

std::string queue_name_of(const std::string& queue_url) {
  auto end = queue_url.find_last_not_of('/');
  if (end == std::string::npos) {
    return {};
  }
  auto slash = queue_url.rfind('/', end);
  return queue_url.substr(slash == std::string::npos ? 0 : slash + 1,
                          end - (slash == std::string::npos ? 0 : slash + 1) + 1);
}

} // namespace mailroom
