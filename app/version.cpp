#include "app/version.hpp"

#include "mailroom_build_info.hpp" // generated at build time: see CMakeLists.txt

namespace mailroom {

std::string version_text() {
  std::string text = "mailroom " MAILROOM_VERSION;
  if (*MAILROOM_GIT_DESCRIBE != '\0') {
    text += " (" MAILROOM_GIT_DESCRIBE ")";
  }
  return text;
}

} // namespace mailroom
