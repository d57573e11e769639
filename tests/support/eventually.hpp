#pragma once

// Test support: waiting for a condition with a deadline, and reading a
// file whole. Free of the engine, so CLI tests include it too.

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace mailroom::testing {

/// Returns once `pred` holds (checked every `step`), or false after `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds{10000},
                std::chrono::milliseconds step = std::chrono::milliseconds{2}) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(step);
  }
  return pred();
}

/// Returns the text of the file at `path` ("" when there is none).
inline std::string file_text(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace mailroom::testing
