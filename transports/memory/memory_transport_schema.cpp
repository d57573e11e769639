#include "transports/memory/memory_transport_schema.hpp"

namespace mailroom {

const settings_schema<memory_transport_settings>& memory_transport_schema() {
  using S = memory_transport_settings;
  static const auto schema = [] {
    settings_schema<S> s;
    s.duration("visibility_timeout_ms", &S::visibility_timeout, 1,
               "How long a polled message stays invisible before it is delivered again")
        .integer("capacity", &S::capacity, 1, 1'000'000, "Most messages held at once")
        .integer("capacity_bytes", &S::capacity_bytes, 1, std::uint64_t{64} << 30,
                 "Most payload bytes held at once", "bytes")
        .integer("max_deliveries", &S::max_deliveries, 0, 1'000'000,
                 "Deliveries after which a message is dead-lettered as rejected; 0: no "
                 "limit");
    return s;
  }();
  return schema;
}

} // namespace mailroom
