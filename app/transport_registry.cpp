#include "app/transport_registry.hpp"

#include <algorithm>

namespace mailroom {

void transport_registry::add(transport_kind kind) {
  auto it = std::find_if(kinds_.begin(), kinds_.end(),
                         [&](const auto& k) { return k.name == kind.name; });
  if (it != kinds_.end()) {
    *it = std::move(kind);
  } else {
    kinds_.push_back(std::move(kind));
  }
}

const transport_kind* transport_registry::find(const std::string& name) const {
  for (const auto& k : kinds_) {
    if (k.name == name) {
      return &k;
    }
  }
  return nullptr;
}

std::vector<std::string> transport_registry::names() const {
  std::vector<std::string> out;
  for (const auto& k : kinds_) {
    out.push_back(k.name);
  }
  return out;
}

void transport_registry::add_unavailable(std::string name, std::string why) {
  unavailable_.emplace_back(std::move(name), std::move(why));
}

std::string transport_registry::unavailable(const std::string& name) const {
  for (const auto& [n, why] : unavailable_) {
    if (n == name) {
      return why;
    }
  }
  return {};
}

} // namespace mailroom
