#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/config_loader.hpp"
#include "app/logging.hpp"
#include "app/run_app.hpp"

#ifndef MAILROOM_DEFAULT_CONFIG
#define MAILROOM_DEFAULT_CONFIG "config/default.toml"
#endif

namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

struct options {
  std::string config = MAILROOM_DEFAULT_CONFIG;
  std::vector<std::string> overrides;
};

void add_config_options(CLI::App& cmd, options& opts) {
  cmd.add_option("-c,--config", opts.config, "TOML configuration file")
      ->capture_default_str();
  cmd.add_option("--set", opts.overrides,
                 "Override one key, as section.key=value (repeatable); the value is "
                 "TOML, or else a plain string")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
}

int config_failure(const std::string& message) {
  std::cerr << "mailroom: config error: " << message << "\n";
  return exit_usage;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mailroom: consume messages, deduplicate them, run a handler for each, and "
      "settle every one (ack, retry or dead-letter).",
      "mailroom"};
  app.require_subcommand(1);
  options opts;
  auto* run = app.add_subcommand("run", "Run the engine until it stops (Ctrl-C drains)");
  auto* validate = app.add_subcommand(
      "validate", "Check the configuration; print it in effect, with secrets redacted");
  add_config_options(*run, opts);
  add_config_options(*validate, opts);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version come here too, with exit code 0.
    return app.exit(e) == 0 ? 0 : exit_usage;
  }

  try {
    mailroom::app_config cfg = mailroom::load_config(opts.config, opts.overrides);
    try {
      mailroom::configure_logging(cfg.log.level, cfg.log.format);
    } catch (const std::invalid_argument& e) {
      return config_failure(e.what());
    }
    if (validate->parsed()) {
      std::cout << mailroom::render_config(cfg) << std::flush;
      std::cerr << "config OK\n";
      return 0;
    }
    return mailroom::run_app(cfg);
  } catch (const mailroom::config_error& e) {
    return config_failure(e.what());
  } catch (const std::exception& e) {
    std::cerr << "mailroom: " << e.what() << "\n";
    return exit_failure;
  } catch (...) {
    std::cerr << "mailroom: unknown error\n";
    return exit_failure;
  }
}
