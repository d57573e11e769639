#include "app/dlq_app.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/unix_time.hpp"

namespace mailroom {

namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
constexpr std::size_t preview_chars = 60;
// Longest a change stays uncommitted while a scan goes on: a Kafka replay's
// open transaction holds back read-committed consumers of its source (and
// the broker aborts one older than transaction.timeout.ms, 60 s).
constexpr std::chrono::seconds commit_at_least_every{5};

int usage(const std::string& why) {
  std::cerr << "mailroom dlq: " << why << "\n";
  return exit_usage;
}

std::string iso_time(std::int64_t ms) {
  if (ms <= 0) {
    return "-";
  }
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// One line, at most preview_chars, control characters shown as '.'.
std::string preview(const std::string& payload) {
  std::string out;
  for (char c : payload.substr(0, preview_chars)) {
    out += static_cast<unsigned char>(c) < 0x20 ? '.' : c;
  }
  return payload.size() > preview_chars ? out + "..." : out;
}

nlohmann::json json_of(const dlq_record& r, bool whole) {
  nlohmann::json j{{"id", r.id},         {"origin", r.origin},
                   {"reason", r.reason}, {"attempts", r.attempts},
                   {"dead_lettered_at", iso_time(r.dead_lettered_at_ms)},
                   {"key", r.key},       {"replays", r.replays}};
  if (whole) {
    j["payload"] = r.payload;
    j["errors"] = r.errors;
    if (r.broker_key) {
      j["broker_key"] = *r.broker_key;
    }
    j["headers"] = nlohmann::json::object();
    for (const auto& [name, value] : r.headers) {
      j["headers"][name] = value;
    }
  } else {
    j["payload_preview"] = preview(r.payload);
  }
  return j;
}

std::string dumped(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Which records a call is about: by id, or by the filters.
struct selection {
  std::optional<std::regex> reason;
  std::int64_t since_ms = 0;

  bool matches(const dlq_record& r) const {
    return (!reason || std::regex_search(r.reason, *reason)) &&
           (since_ms == 0 || r.dead_lettered_at_ms >= since_ms);
  }
};

// A progress line on stderr at most once a second for long work.
class progress_line {
public:
  explicit progress_line(const char* verb) : verb_(verb) {}
  void tick(std::uint64_t done) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_ >= std::chrono::seconds{1}) {
      last_ = now;
      std::cerr << "mailroom dlq: " << verb_ << " " << done << " so far\n";
    }
  }

private:
  const char* verb_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

int list(dead_letter_queue& dlq, const selection& sel, const dlq_request& rq) {
  std::size_t shown = 0;
  dlq.for_each([&](const dlq_record& r) {
    if (!sel.matches(r)) {
      return true;
    }
    if (rq.json) {
      std::cout << dumped(json_of(r, false)) << "\n";
    } else {
      std::cout << r.id << "  " << iso_time(r.dead_lettered_at_ms) << "  attempts "
                << r.attempts << "  " << r.origin << "  " << r.reason << "  | "
                << preview(r.payload) << "\n";
    }
    return ++shown < rq.limit;
  });
  std::cerr << "mailroom dlq: " << shown << " record" << (shown == 1 ? "" : "s")
            << " shown from " << dlq.describe() << (shown == rq.limit ? " (--limit reached)" : "")
            << "\n";
  return 0;
}

int show(dead_letter_queue& dlq, const dlq_request& rq) {
  dlq_record r;
  if (!dlq.find(rq.ids.front(), r)) {
    std::cerr << "mailroom dlq: no record " << rq.ids.front() << " in " << dlq.describe()
              << "\n";
    return exit_failure;
  }
  std::cout << dumped(json_of(r, true), 2) << "\n";
  return 0;
}

// Replays or purges what the request selects; counts what changed (what
// the adapter has made durable: `dead_letter_queue::commit`).
int change(dead_letter_queue& dlq, const selection& sel, const dlq_request& rq) {
  const bool replay = rq.action == "replay";
  const bool dry = replay ? rq.dry_run : !rq.yes;
  std::uint64_t done = 0, missing = 0, would = 0, uncommitted = 0;
  progress_line progress{replay ? "replayed" : "purged"};
  auto committed_at = std::chrono::steady_clock::now();
  auto commit = [&] {
    dlq.commit();
    done += uncommitted;
    uncommitted = 0;
    committed_at = std::chrono::steady_clock::now();
    progress.tick(done);
  };
  auto act = [&](const dlq_record& r) {
    if (dry) {
      std::cout << "would " << rq.action << " " << r.id << "  " << r.reason << "\n";
      ++would;
      return;
    }
    auto outcome = replay ? dlq.replay(r) : dlq.remove(r);
    ++(outcome == dlq_change::done ? uncommitted : missing);
    if (uncommitted >= dlq.changes_per_commit()) {
      commit();
    }
  };
  int rc = 0;
  try {
    if (!rq.ids.empty()) {
      for (const auto& id : rq.ids) {
        dlq_record r;
        if (!dlq.find(id, r)) {
          std::cerr << "mailroom dlq: no record " << id << " in " << dlq.describe() << "\n";
          rc = exit_failure;
          continue;
        }
        act(r);
      }
    } else {
      dlq.for_each([&](const dlq_record& r) {
        if (uncommitted > 0 &&
            std::chrono::steady_clock::now() - committed_at >= commit_at_least_every) {
          commit(); // a sparse filter over a long DLQ
        }
        if (sel.matches(r)) {
          act(r);
        }
        return true;
      });
    }
    commit();
  } catch (const std::exception& e) {
    // What was committed before the failure is done: say how much.
    std::cerr << "mailroom dlq: " << e.what() << "\nmailroom dlq: "
              << (replay ? "replayed " : "purged ") << done << " before the failure; "
              << "the rest is still in the DLQ\n";
    return exit_failure;
  }
  if (dry) {
    std::cerr << "mailroom dlq: " << would << " record" << (would == 1 ? "" : "s") << " would be "
              << (replay ? "replayed" : "purged")
              << (replay ? " (dry run)" : "; nothing removed without --yes") << "\n";
    return replay ? rc : (rc != 0 ? rc : exit_usage);
  }
  std::cerr << "mailroom dlq: " << (replay ? "replayed " : "purged ") << done << " of "
            << dlq.describe();
  if (missing > 0) {
    std::cerr << "; " << missing << " gone meanwhile (replayed or purged elsewhere)";
  }
  std::cerr << "\n";
  return rc;
}

} // namespace

std::optional<std::int64_t> parse_since(const std::string& text, std::int64_t now_ms) {
  if (text.empty() || text.find_first_not_of("0123456789") == 0) {
    return std::nullopt;
  }
  auto digits_end = text.find_first_not_of("0123456789");
  std::int64_t n = 0;
  try {
    n = std::stoll(text.substr(0, digits_end));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (digits_end == std::string::npos) {
    return n; // Unix ms
  }
  auto unit = text.substr(digits_end);
  std::int64_t ms = unit == "s" ? 1000 : unit == "m" ? 60000 : unit == "h" ? 3600000
                  : unit == "d" ? 86400000 : 0;
  if (ms == 0) {
    return std::nullopt;
  }
  return now_ms - n * ms;
}

int dlq_app(const app_config& cfg, const transport_registry& registry,
            const dlq_request& rq) {
  const auto* kind = registry.find(cfg.transport.type);
  if (kind == nullptr || !kind->open_dlq) {
    return usage("the " + cfg.transport.type +
                 " transport has no dead-letter destination mailroom dlq can reach from "
                 "another process (see the README's mailroom dlq section)");
  }
  selection sel;
  if (!rq.reason.empty()) {
    try {
      sel.reason.emplace(rq.reason);
    } catch (const std::regex_error& e) {
      return usage("--reason: not a regular expression: " + std::string{e.what()});
    }
  }
  if (!rq.since.empty()) {
    auto at = parse_since(rq.since, unix_ms_now());
    if (!at) {
      return usage("--since: expected Unix ms or a duration back such as 30m, 2h, 7d; got \"" +
                   rq.since + "\"");
    }
    sel.since_ms = *at;
  }
  bool changes = rq.action == "replay" || rq.action == "purge";
  if (changes && rq.ids.empty() && !rq.all && rq.reason.empty() && rq.since.empty()) {
    return usage(rq.action + ": say which records: --id ID ..., --reason REGEX, --since T "
                             "or --all");
  }
  try {
    auto dlq = kind->open_dlq(*cfg.transport.by_type.at(kind->name), cfg);
    if (rq.action == "list") {
      return list(*dlq, sel, rq);
    }
    if (rq.action == "show") {
      return show(*dlq, rq);
    }
    return change(*dlq, sel, rq);
  } catch (const std::exception& e) {
    std::cerr << "mailroom dlq: " << e.what() << "\n";
    return exit_failure;
  }
}

} // namespace mailroom
