#include "options.hpp"

#include <stdexcept>

namespace mailroom::bench {

std::uint64_t parse_u64(const std::string& text, const std::string& what) {
  std::uint64_t value = 0;
  std::uint64_t scale = 1;
  bool digits = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      value = value * 10 + static_cast<std::uint64_t>(c - '0');
      digits = true;
    } else if (c == '_' || c == ',') {
      continue;
    } else if (i + 1 == text.size() && (c == 'k' || c == 'K')) {
      scale = 1000;
    } else if (i + 1 == text.size() && c == 'M') {
      scale = 1000000;
    } else if (i + 1 == text.size() && c == 'G') {
      scale = 1000000000;
    } else {
      digits = false;
      break;
    }
  }
  if (!digits) {
    throw std::invalid_argument(what + ": expected an unsigned integer, got '" + text + "'");
  }
  return value * scale;
}

options::options(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string word = argv[i];
    if (word.rfind("--", 0) != 0 || word.size() < 3) {
      throw std::invalid_argument("unexpected argument '" + word + "'");
    }
    std::string name = word.substr(2);
    std::string value = "true";
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < argc && std::string{argv[i + 1]}.rfind("--", 0) != 0) {
      value = argv[++i];
    }
    values_[name] = value;
  }
}

const std::string* options::find(const std::string& name) {
  asked_.insert(name);
  auto i = values_.find(name);
  return i == values_.end() ? nullptr : &i->second;
}

std::uint64_t options::u64(const std::string& name, std::uint64_t fallback) {
  auto* v = find(name);
  return v ? parse_u64(*v, "--" + name) : fallback;
}

std::vector<std::uint64_t> options::u64_list(const std::string& name,
                                             std::vector<std::uint64_t> fallback) {
  auto* v = find(name);
  if (!v) {
    return fallback;
  }
  std::vector<std::uint64_t> out;
  std::size_t start = 0;
  while (start <= v->size()) {
    auto comma = v->find(',', start);
    if (comma == std::string::npos) {
      comma = v->size();
    }
    out.push_back(parse_u64(v->substr(start, comma - start), "--" + name));
    start = comma + 1;
  }
  return out;
}

std::string options::str(const std::string& name, const std::string& fallback) {
  auto* v = find(name);
  return v ? *v : fallback;
}

bool options::flag(const std::string& name) {
  auto* v = find(name);
  return v && (*v == "true" || *v == "1" || *v == "yes");
}

void options::check_unknown() const {
  for (auto& [name, value] : values_) {
    if (!asked_.count(name)) {
      throw std::invalid_argument("unknown option --" + name);
    }
  }
}

} // namespace mailroom::bench
