#include <cstdlib>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/config_loader.hpp"
#include "app/default_config.hpp"
#include "app/dlq_app.hpp"
#include "app/logging.hpp"
#include "app/run_app.hpp"
#include "app/sweep_app.hpp"
#include "app/cli.hpp"
#include "app/version.hpp"

namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

const char* const footer =
    "Exit codes: 0 done (a drain after SIGINT/SIGTERM included), 1 runtime failure\n"
    "(Redis or a broker unreachable at start, a component failing on every\n"
    "restart), 2 bad usage or configuration (the message names the key).\n"
    "Environment: MAILROOM_LOG_LEVEL (trace ... off) overrides log.level.\n"
    "Without --config, the first of these that exists is read: default.toml,\n"
    "config/default.toml, ../config/default.toml and ../share/mailroom/default.toml\n"
    "from the binary's directory, then /etc/mailroom/mailroom.toml.";

const std::vector<std::string> subcommands{"run",     "sweep", "validate", "dlq",
                                           "version", "help"};

struct options {
  std::string config;
  std::vector<std::string> overrides;
  bool json = false;
};

void add_config_options(CLI::App& cmd, options& opts) {
  cmd.add_option("-c,--config", opts.config,
                 "TOML configuration file (default: see below)");
  cmd.add_option("--set", opts.overrides,
                 "Override one key, as section.key=value (repeatable); the value is "
                 "TOML, or else a plain string")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
}

int usage_failure(const std::string& message) {
  std::cerr << "mailroom: " << message << "\nRun 'mailroom --help' for usage.\n";
  return exit_usage;
}

int config_failure(const std::string& message) {
  std::cerr << "mailroom: config error: " << message << "\n";
  return exit_usage;
}

// "did you mean" for a mistyped subcommand, before CLI11 sees it.
int check_subcommand(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    return 0;
  }
  std::string word = argv[1];
  for (const auto& known : subcommands) {
    if (word == known) {
      return 0;
    }
  }
  std::string hint = mailroom::closest_word(word, subcommands);
  return usage_failure("unknown subcommand '" + word + "'" +
                       (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                       "; the subcommands are run, sweep, validate, dlq, version, help");
}

// Prints the effective configuration; the log level in force is the one of
// MAILROOM_LOG_LEVEL when it is set, and the output says so.
void print_effective(mailroom::app_config cfg, const mailroom::transport_registry& registry) {
  if (const char* env = std::getenv("MAILROOM_LOG_LEVEL"); env != nullptr && *env) {
    std::cout << "# log.level: MAILROOM_LOG_LEVEL=" << env << " overrides \""
              << cfg.log.level << "\" from the file\n";
    cfg.log.level = env;
  }
  std::cout << mailroom::render_config(cfg);
  // What the selected transport makes of its settings (a Kafka client's
  // effective properties), secrets redacted by the transport.
  const auto* kind = registry.find(cfg.transport.type);
  if (kind != nullptr && kind->describe) {
    std::cout << "\n";
    for (const auto& line : kind->describe(*cfg.transport.by_type.at(kind->name), cfg)) {
      std::cout << "# " << line << "\n";
    }
  }
  std::cout << std::flush;
}

} // namespace

int mailroom::run_cli(int argc, char** argv, const mailroom::transport_registry& registry) {
  if (int rc = check_subcommand(argc, argv); rc != 0) {
    return rc;
  }
  CLI::App app{
      "mailroom: consume messages, deduplicate them, run a handler for each, and "
      "settle every one (ack, retry or dead-letter).",
      "mailroom"};
  app.footer(footer);
  app.require_subcommand(1);
  app.set_version_flag("-V,--version", mailroom::version_text());
  options opts;
  auto* run = app.add_subcommand("run", "Run the engine until it stops (Ctrl-C drains)");
  auto* sweep = app.add_subcommand(
      "sweep", "Run one recovery sweep (stale markers, expired claims), settle what it "
               "found, print the counts and exit (for cron)");
  sweep->add_flag("--json", opts.json, "Print the summary as one JSON object");
  auto* validate = app.add_subcommand(
      "validate", "Check the configuration; print it in effect, with secrets redacted");
  auto* version = app.add_subcommand("version", "Print the version and exit");
  auto* help = app.add_subcommand("help", "Print the help of a subcommand: help dlq replay");
  std::vector<std::string> help_topic;
  help->add_option("command", help_topic, "Subcommand (and sub-subcommand)");
  add_config_options(*run, opts);
  add_config_options(*sweep, opts);
  add_config_options(*validate, opts);

  mailroom::dlq_request dlq_rq;
  auto* dlq = app.add_subcommand(
      "dlq", "Look into the dead-letter destination; replay or purge records");
  dlq->require_subcommand(1);
  auto* dlq_list = dlq->add_subcommand("list", "List records: id, time, attempts, origin, "
                                               "reason, payload preview (masked as stored)");
  auto* dlq_show = dlq->add_subcommand("show", "Print one record whole, with its attempt "
                                               "history, as JSON");
  auto* dlq_replay = dlq->add_subcommand(
      "replay", "Write records back to their source (dedupe state cleared, a "
                "mailroom.replayed header counting), then remove them from the DLQ");
  auto* dlq_purge = dlq->add_subcommand("purge", "Remove records (asks for --yes)");
  for (auto* cmd : {dlq_list, dlq_show, dlq_replay, dlq_purge}) {
    add_config_options(*cmd, opts);
  }
  for (auto* cmd : {dlq_list, dlq_replay, dlq_purge}) {
    cmd->add_option("--reason", dlq_rq.reason, "Only records whose reason matches REGEX")
        ->type_name("REGEX");
    cmd->add_option("--since", dlq_rq.since,
                    "Only records parked since T: Unix ms, or back from now (30m, 2h, 7d)")
        ->type_name("T");
  }
  dlq_list->add_option("--limit", dlq_rq.limit, "Show at most N records (default 50)")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  dlq_list->add_flag("--json", dlq_rq.json, "One JSON object per record");
  dlq_show->add_option("id", dlq_rq.ids, "Record id")->required()->expected(1);
  for (auto* cmd : {dlq_replay, dlq_purge}) {
    cmd->add_option("--id", dlq_rq.ids, "Record id (repeatable)")->type_name("ID");
    cmd->add_flag("--all", dlq_rq.all, "Every record");
  }
  dlq_replay->add_flag("--dry-run", dlq_rq.dry_run, "Print what would be replayed");
  dlq_purge->add_flag("--yes", dlq_rq.yes, "Remove for real (without it: what would go)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_failure(e.what());
  }
  if (version->parsed()) {
    std::cout << mailroom::version_text() << "\n";
    return 0;
  }
  if (help->parsed()) {
    const CLI::App* topic = &app;
    for (const auto& word : help_topic) {
      const CLI::App* next = nullptr;
      for (const auto* sub : topic->get_subcommands({})) {
        if (sub->get_name() == word) {
          next = sub;
        }
      }
      if (next == nullptr) {
        return usage_failure("help: no subcommand '" + word + "'");
      }
      topic = next;
    }
    std::cout << topic->help();
    return 0;
  }

  try {
    if (opts.config.empty()) {
      opts.config = mailroom::find_default_config(argv[0]);
    }
    mailroom::app_config cfg = mailroom::load_config(opts.config, opts.overrides, registry);
    try {
      mailroom::configure_logging(cfg.log.level, cfg.log.format);
    } catch (const std::invalid_argument& e) {
      return config_failure(e.what());
    }
    if (validate->parsed()) {
      print_effective(cfg, registry);
      std::cerr << "config OK\n";
      return 0;
    }
    if (sweep->parsed()) {
      return mailroom::sweep_app(cfg, registry, opts.json);
    }
    if (dlq->parsed()) {
      for (auto* cmd : {dlq_list, dlq_show, dlq_replay, dlq_purge}) {
        if (cmd->parsed()) {
          dlq_rq.action = cmd->get_name();
        }
      }
      return mailroom::dlq_app(cfg, registry, dlq_rq);
    }
    return mailroom::run_app(cfg, registry);
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
