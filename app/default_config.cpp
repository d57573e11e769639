#include "app/default_config.hpp"

#include <filesystem>
#include <system_error>

#include "app/config_loader.hpp"

namespace mailroom {

namespace {

std::filesystem::path binary_dir(const char* argv0) {
  std::error_code ec;
  // /proc/self/exe names the binary whatever the current directory is.
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec && argv0 != nullptr) {
    exe = std::filesystem::absolute(argv0, ec);
  }
  return exe.parent_path();
}

} // namespace

std::vector<std::string> default_config_candidates() {
  auto dir = binary_dir(nullptr);
  return {(dir / "default.toml").string(), (dir / "config" / "default.toml").string(),
          (dir / ".." / "config" / "default.toml").lexically_normal().string(),
          (dir / ".." / "share" / "mailroom" / "default.toml").lexically_normal().string(),
          "/etc/mailroom/mailroom.toml"};
}

std::string find_default_config(const char* argv0) {
  (void)argv0;
  std::string looked;
  for (const auto& path : default_config_candidates()) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) {
      return path;
    }
    looked += (looked.empty() ? "" : ", ") + path;
  }
  throw config_error("", "no --config given and no configuration found (looked for " +
                             looked + ")");
}

} // namespace mailroom
