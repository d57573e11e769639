#pragma once

// Test support: prints a failure_class, so BOOST_TEST(a == b) on it can
// report both sides.

#include <ostream>

#include "core/io_result.hpp"

namespace mailroom {

/// Writes the name of `c` ("none", "transient", "fatal", "poison").
inline std::ostream& operator<<(std::ostream& out, failure_class c) {
  switch (c) {
  case failure_class::none:
    return out << "none";
  case failure_class::transient:
    return out << "transient";
  case failure_class::fatal:
    return out << "fatal";
  case failure_class::poison:
    return out << "poison";
  }
  return out << "failure_class(" << static_cast<int>(c) << ")";
}

} // namespace mailroom
