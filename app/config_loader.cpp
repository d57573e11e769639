#include "app/config_loader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>
#include <type_traits>

#include <toml++/toml.h>

#include "app/builtin_handlers.hpp"
#include "core/payload_mask.hpp"

namespace mailroom {

config_error::config_error(std::string key, const std::string& problem)
    : std::runtime_error(key.empty() ? problem : key + ": " + problem),
      key_(std::move(key)) {}

namespace {

using key_list = std::vector<std::string_view>;

// Durations are bounded so that adding one to a time point can never overflow.
constexpr std::uint64_t max_duration = std::numeric_limits<std::uint32_t>::max();
// A generated payload is copied a few times inside the engine (transport,
// dispatch record): 16 MiB keeps a run of them within a few hundred MiB.
constexpr std::uint64_t max_payload_bytes = 16ull << 20;
constexpr std::uint64_t max_capacity_bytes = 64ull << 30;
constexpr std::uint32_t max_workers = 1024;
// Bounds the in-flight budget (and everything sized by it: the queue, the
// lease groups) to what one process can hold; a poll asks for at most this.
constexpr std::uint32_t max_in_flight_limit = 1'000'000;
constexpr std::uint32_t max_batch_size = 100'000;

const key_list top_keys{"log",     "engine",  "retry",       "dedupe",
                        "sweeper", "redis",   "dead_letter", "transport",
                        "source",  "handler", "handlers",    "progress"};
const key_list handler_keys{"type", "latency_us", "command", "env", "env_clear"};
const key_list store_kinds{"memory", "redis"};

// What the shell and `env` accept as a variable name; anything else in
// `password_env` is more likely the password itself than a name.
bool is_env_name(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// What XGROUP CREATE takes as a start id: "$", or <ms>[-<seq>] in digits.
bool is_stream_start_id(std::string_view s) {
  if (s == "$") {
    return true;
  }
  auto digits = [](std::string_view d) {
    return !d.empty() && d.size() <= 20 &&
           std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  auto dash = s.find('-');
  return dash == std::string_view::npos
             ? digits(s)
             : digits(s.substr(0, dash)) && digits(s.substr(dash + 1));
}

bool is_bare_key(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\r':
      out += "\\r";
      break;
    default:
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      } else {
        out += c;
      }
    }
  }
  return out + "\"";
}

std::string key_text(std::string_view s) {
  return is_bare_key(s) ? std::string(s) : quote(s);
}

std::string join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? key_text(name) : prefix + "." + key_text(name);
}

std::string fmt_double(double d) {
  if (std::isnan(d)) {
    return "nan";
  }
  if (std::isinf(d)) {
    return d > 0 ? "inf" : "-inf";
  }
  char buf[40];
  if (d == std::floor(d) && std::fabs(d) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.1f", d);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) {
      break;
    }
  }
  std::string s = buf;
  if (s.find_first_of(".eE") == std::string::npos) {
    s += ".0";
  }
  return s;
}

std::string truncated(std::string s) {
  constexpr std::size_t limit = 80;
  if (s.size() > limit) {
    s.resize(limit);
    s += "...";
  }
  return s;
}

std::string value_text(const toml::node& n) {
  if (auto* s = n.as_string()) {
    return truncated(quote(s->get()));
  }
  if (auto* i = n.as_integer()) {
    return std::to_string(i->get());
  }
  if (auto* f = n.as_floating_point()) {
    return fmt_double(f->get());
  }
  if (auto* b = n.as_boolean()) {
    return b->get() ? "true" : "false";
  }
  if (auto* a = n.as_array()) {
    std::string s = "[";
    for (std::size_t i = 0; i < a->size(); ++i) {
      s += (i == 0 ? "" : ", ") + value_text((*a)[i]);
    }
    return truncated(s + "]");
  }
  if (n.is_table()) {
    return "{...}";
  }
  std::ostringstream os;
  n.visit([&](auto&& v) { os << v; });
  return truncated(os.str());
}

std::string describe(const toml::node& n) {
  switch (n.type()) {
  case toml::node_type::string:
    return "string " + value_text(n);
  case toml::node_type::integer:
    return "integer " + value_text(n);
  case toml::node_type::floating_point:
    return "floating-point " + value_text(n);
  case toml::node_type::boolean:
    return "boolean " + value_text(n);
  case toml::node_type::array:
    return "array " + value_text(n);
  case toml::node_type::table:
    return "table";
  case toml::node_type::date:
    return "date " + value_text(n);
  case toml::node_type::time:
    return "time " + value_text(n);
  case toml::node_type::date_time:
    return "date-time " + value_text(n);
  default:
    return "nothing";
  }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] =
          std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The word of `known` within typo distance of `word`, or empty.
template <class Words> std::string_view closest(std::string_view word, const Words& known) {
  std::string_view best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& k : known) {
    auto d = edit_distance(word, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  return best;
}

std::string unknown_key_problem(std::string_view name, const key_list& known) {
  auto best = closest(name, known);
  if (!best.empty()) {
    return "unknown key (did you mean \"" + std::string(best) + "\"?)";
  }
  std::string list;
  for (auto k : known) {
    list += (list.empty() ? "" : ", ") + std::string(k);
  }
  return "unknown key (known keys: " + list + ")";
}

std::string one_of_text(const key_list& allowed) {
  std::string s = allowed.size() == 1 ? "" : "one of ";
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    s += (i == 0 ? "" : ", ") + quote(allowed[i]);
  }
  return s;
}

// Raw text of --set values by dotted key, so a key expecting a string still
// takes a value that happened to parse as another TOML type.
using raw_overrides = std::map<std::string, std::string>;

const toml::table empty_table;

// Unknown keys are rejected before any value is read, so a typo is reported
// as such rather than as a missing value's default silently applying.
class section {
public:
  section(const toml::table* t, std::string path, const key_list& known,
          const raw_overrides& raw)
      : t_(t != nullptr ? *t : empty_table), path_(std::move(path)), raw_(raw) {
    for (auto&& [k, v] : t_) {
      if (std::find(known.begin(), known.end(), k.str()) == known.end()) {
        throw config_error(join(path_, k.str()), unknown_key_problem(k.str(), known));
      }
    }
  }

  const toml::node* find(std::string_view name) const { return t_.get(name); }
  std::string path(std::string_view name) const { return join(path_, name); }

  [[noreturn]] void fail(std::string_view name, const std::string& expected,
                         const std::string& got) const {
    throw config_error(path(name), "expected " + expected + ", got " + got);
  }

  const toml::table* table(std::string_view name) const {
    const auto* n = find(name);
    if (n == nullptr) {
      return nullptr;
    }
    if (!n->is_table()) {
      fail(name, "table", describe(*n));
    }
    return n->as_table();
  }

  void boolean(std::string_view name, bool& out) const {
    if (const auto* n = find(name)) {
      if (!n->is_boolean()) {
        fail(name, "boolean (true or false)", describe(*n));
      }
      out = n->as_boolean()->get();
    }
  }

  template <class T>
  void integer(std::string_view name, T& out, std::uint64_t min,
               std::uint64_t max = std::numeric_limits<T>::max(),
               const char* unit = nullptr) const {
    static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
    const auto* n = find(name);
    if (n == nullptr) {
      return;
    }
    std::string expected = "integer";
    max = std::min<std::uint64_t>(max, std::numeric_limits<std::int64_t>::max());
    if (max == static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      expected += " >= " + std::to_string(min);
    } else {
      expected += " in " + std::to_string(min) + ".." + std::to_string(max);
    }
    if (unit != nullptr) {
      expected += std::string(" (") + unit + ")";
    }
    if (!n->is_integer()) {
      fail(name, expected, describe(*n));
    }
    auto v = n->as_integer()->get();
    if (v < 0 || static_cast<std::uint64_t>(v) < min ||
        static_cast<std::uint64_t>(v) > max) {
      fail(name, expected, std::to_string(v));
    }
    out = static_cast<T>(v);
  }

  template <class Unit, class D>
  void duration(std::string_view name, D& out, std::uint64_t min,
                const char* unit) const {
    std::uint64_t count = 0;
    bool present = find(name) != nullptr;
    integer(name, count, min, max_duration, unit);
    if (present) {
      out = std::chrono::duration_cast<D>(Unit(static_cast<typename Unit::rep>(count)));
    }
  }

  void ratio(std::string_view name, double& out) const {
    const auto* n = find(name);
    if (n == nullptr) {
      return;
    }
    const char* expected = "number in 0..1";
    double v = 0;
    if (n->is_floating_point()) {
      v = n->as_floating_point()->get();
    } else if (n->is_integer()) {
      v = static_cast<double>(n->as_integer()->get());
    } else {
      fail(name, expected, describe(*n));
    }
    if (!(v >= 0.0 && v <= 1.0)) {
      fail(name, expected, value_text(*n));
    }
    out = v;
  }

  void string(std::string_view name, std::string& out) const {
    const auto* n = find(name);
    if (n == nullptr) {
      return;
    }
    if (n->is_string()) {
      out = n->as_string()->get();
      return;
    }
    if (auto r = raw_.find(path(name)); r != raw_.end() && !n->is_table()) {
      out = r->second;
      return;
    }
    fail(name, "string", describe(*n));
  }

  void one_of(std::string_view name, std::string& out, const key_list& allowed) const {
    std::string v = out;
    string(name, v);
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
      fail(name, one_of_text(allowed), truncated(quote(v)));
    }
    out = v;
  }

  template <class E>
  void enumeration(std::string_view name, E& out,
                   const std::vector<std::pair<std::string_view, E>>& allowed) const {
    if (find(name) == nullptr) {
      return;
    }
    key_list names;
    for (auto& a : allowed) {
      names.push_back(a.first);
    }
    std::string v;
    one_of(name, v, names);
    for (auto& a : allowed) {
      if (a.first == v) {
        out = a.second;
      }
    }
  }

  bool strings(std::string_view name, std::vector<std::string>& out) const {
    const auto* n = find(name);
    if (n == nullptr) {
      return false;
    }
    const char* expected = "array of strings";
    if (!n->is_array()) {
      fail(name, expected, describe(*n));
    }
    std::vector<std::string> v;
    const auto& arr = *n->as_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
      if (!arr[i].is_string()) {
        fail(name, expected, describe(arr[i]) + " at index " + std::to_string(i));
      }
      v.push_back(arr[i].as_string()->get());
    }
    out = std::move(v);
    return true;
  }

private:
  const toml::table& t_;
  std::string path_;
  const raw_overrides& raw_;
};

handler_spec read_handler(const toml::table* t, const std::string& prefix,
                          const raw_overrides& raw) {
  handler_spec h;
  section s(t, prefix, handler_keys, raw);
  s.one_of("type", h.type, {"demo", "noop", "log", "exec"});
  s.duration<std::chrono::microseconds>("latency_us", h.latency, 0, "microseconds");
  bool has_command = s.strings("command", h.command);
  s.boolean("env_clear", h.env_clear);
  if (const auto* env = s.table("env")) {
    std::string env_path = s.path("env");
    for (auto&& [k, v] : *env) {
      std::string name(k.str());
      if (name.empty() || name.find('=') != std::string::npos ||
          name.find('\0') != std::string::npos) {
        throw config_error(join(env_path, name),
                           "expected an environment variable name without '=', got " +
                               quote(name));
      }
      if (!v.is_string() || v.as_string()->get().find('\0') != std::string::npos) {
        throw config_error(join(env_path, name),
                           "expected string without NUL, got " + describe(v));
      }
      h.env.emplace_back(name, v.as_string()->get());
    }
  }
  for (const auto& arg : h.command) {
    if (arg.find('\0') != std::string::npos) {
      s.fail("command", "strings without NUL", truncated(quote(arg)));
    }
  }
  if (h.type == "exec") {
    if (h.command.empty()) {
      s.fail("command",
             "a non-empty array of strings (program and arguments) for type \"exec\"",
             has_command ? "[]" : "nothing");
    }
    if (h.command.front().empty()) {
      s.fail("command", "a program as the first element", "\"\"");
    }
    // A typo here used to dead-letter every message and exit 0.
    if (auto why = check_exec_command(h.command.front()); !why.empty()) {
      s.fail("command", "an executable program as the first element",
             truncated(quote(h.command.front())) + " (" + why + ")");
    }
  }
  return h;
}

app_config build(const toml::table& root, const raw_overrides& raw) {
  app_config cfg;
  auto& ec = cfg.engine_cfg;
  section top(&root, "", top_keys, raw);

  {
    section s(top.table("log"), "log", {"level", "format"}, raw);
    s.one_of("level", cfg.log.level,
             {"trace", "debug", "info", "warn", "error", "critical", "off"});
    s.one_of("format", cfg.log.format, {"text", "json"});
  }
  {
    auto& e = ec.engine;
    section s(top.table("engine"), "engine",
              {"max_in_flight", "workers", "batch_size", "poll_wait_ms",
               "handler_timeout_ms", "ordering", "unknown_topic", "drain_timeout_ms",
               "restart_backoff_base_ms", "restart_backoff_cap_ms",
               "stop_when_exhausted"},
              raw);
    s.integer("max_in_flight", e.max_in_flight, 1, max_in_flight_limit);
    s.integer("workers", e.workers, 1, max_workers);
    s.integer("batch_size", e.batch_size, 1, max_batch_size);
    s.duration<milliseconds>("poll_wait_ms", e.poll_wait, 0, "milliseconds");
    s.duration<milliseconds>("handler_timeout_ms", e.handler_timeout, 1, "milliseconds");
    s.enumeration<ordering_mode>(
        "ordering", e.ordering,
        {{"unordered", ordering_mode::unordered}, {"per_key", ordering_mode::per_key}});
    s.enumeration<unknown_topic_policy>(
        "unknown_topic", e.unknown_topic,
        {{"ack", unknown_topic_policy::ack},
         {"dead_letter", unknown_topic_policy::dead_letter}});
    s.duration<milliseconds>("drain_timeout_ms", e.drain_timeout, 0, "milliseconds");
    s.duration<milliseconds>("restart_backoff_base_ms", e.restart_backoff_base, 1,
                             "milliseconds");
    s.duration<milliseconds>("restart_backoff_cap_ms", e.restart_backoff_cap, 1,
                             "milliseconds");
    s.boolean("stop_when_exhausted", e.stop_when_exhausted);
    if (e.restart_backoff_cap < e.restart_backoff_base) {
      s.fail("restart_backoff_cap_ms",
             "at least engine.restart_backoff_base_ms (" +
                 std::to_string(e.restart_backoff_base.count()) + ")",
             std::to_string(e.restart_backoff_cap.count()));
    }
  }
  {
    auto& r = ec.retry;
    section s(top.table("retry"), "retry", {"base_ms", "cap_ms", "max_attempts"}, raw);
    s.duration<milliseconds>("base_ms", r.base, 0, "milliseconds");
    s.duration<milliseconds>("cap_ms", r.cap, 0, "milliseconds");
    s.integer("max_attempts", r.max_attempts, 1);
    if (r.cap < r.base) {
      s.fail("cap_ms", "at least retry.base_ms (" + std::to_string(r.base.count()) + ")",
             std::to_string(r.cap.count()));
    }
  }
  {
    auto& d = ec.dedupe;
    section s(top.table("dedupe"), "dedupe",
              {"enabled", "store", "claim_ttl_ms", "result_ttl_ms", "in_flight_delay_ms",
               "on_store_error", "store_error_delay_ms", "scope"},
              raw);
    s.boolean("enabled", d.enabled);
    s.one_of("store", cfg.dedupe_store, store_kinds);
    s.duration<milliseconds>("claim_ttl_ms", d.claim_ttl, 1, "milliseconds");
    s.duration<milliseconds>("result_ttl_ms", d.result_ttl, 1, "milliseconds");
    s.duration<milliseconds>("in_flight_delay_ms", d.in_flight_delay, 0, "milliseconds");
    s.enumeration<store_failure_policy>(
        "on_store_error", d.on_store_error,
        {{"fail_open", store_failure_policy::fail_open},
         {"fail_closed", store_failure_policy::fail_closed}});
    s.duration<milliseconds>("store_error_delay_ms", d.store_error_delay, 0,
                             "milliseconds");
    s.enumeration<dedupe_scope>("scope", d.scope,
                                {{"topic", dedupe_scope::topic},
                                 {"global", dedupe_scope::global}});
    if (d.enabled && d.claim_ttl <= ec.engine.handler_timeout) {
      s.fail("claim_ttl_ms",
             "more than engine.handler_timeout_ms (" +
                 std::to_string(ec.engine.handler_timeout.count()) +
                 ") so a claim outlives a handler call",
             std::to_string(d.claim_ttl.count()));
    }
  }
  {
    auto& w = ec.sweeper;
    section s(top.table("sweeper"), "sweeper",
              {"enabled", "store", "interval_ms", "stale_cutoff_ms", "limit"}, raw);
    s.boolean("enabled", w.enabled);
    s.one_of("store", cfg.sweeper_store, store_kinds);
    s.duration<milliseconds>("interval_ms", w.interval, 1, "milliseconds");
    s.duration<milliseconds>("stale_cutoff_ms", w.stale_cutoff, 1, "milliseconds");
    s.integer("limit", w.limit, 1);
    if (w.enabled && w.stale_cutoff <= ec.engine.handler_timeout) {
      s.fail("stale_cutoff_ms",
             "more than engine.handler_timeout_ms (" +
                 std::to_string(ec.engine.handler_timeout.count()) +
                 ") so a running handler is never swept",
             std::to_string(w.stale_cutoff.count()));
    }
  }
  {
    auto& r = cfg.redis;
    section s(top.table("redis"), "redis",
              {"host", "port", "db", "username", "password_env", "connect_timeout_ms",
               "command_timeout_ms", "keep_alive", "key_prefix"},
              raw);
    s.string("host", r.host);
    if (r.host.empty() || r.host.find('\0') != std::string::npos) {
      s.fail("host", "a non-empty host name or address without NUL",
             truncated(quote(r.host)));
    }
    s.integer("port", r.port, 1, 65535);
    s.integer("db", r.db, 0);
    s.string("username", r.username);
    if (r.username.find('\0') != std::string::npos) {
      s.fail("username", "a user name without NUL", truncated(quote(r.username)));
    }
    s.string("password_env", r.password_env);
    if (!r.password_env.empty() && !is_env_name(r.password_env)) {
      // Not echoed: a value that is no variable name may be the password.
      s.fail(
          "password_env",
          "the NAME of the environment variable holding the password (letters, digits "
          "and _, not starting with a digit), or \"\" for none",
          "a value that is not such a name (not shown: it may be the password itself)");
    }
    s.duration<milliseconds>("connect_timeout_ms", r.connect_timeout, 1, "milliseconds");
    s.duration<milliseconds>("command_timeout_ms", r.command_timeout, 1, "milliseconds");
    s.boolean("keep_alive", r.keep_alive);
    s.string("key_prefix", r.key_prefix);
  }
  {
    auto& dl = ec.dead_letter;
    section s(top.table("dead_letter"), "dead_letter",
              {"mask_fields", "mask_regex", "mask_with", "on_unparsable"}, raw);
    s.strings("mask_fields", dl.mask_fields);
    s.string("mask_regex", dl.mask_regex);
    s.string("mask_with", dl.mask_with);
    s.enumeration<unparsable_policy>("on_unparsable", dl.on_unparsable,
                                     {{"redact", unparsable_policy::redact},
                                      {"regex", unparsable_policy::regex},
                                      {"keep", unparsable_policy::keep}});
    for (const auto& p : dl.mask_fields) {
      try {
        payload_mask{{p}, {}, dl.mask_with};
      } catch (const std::invalid_argument& e) {
        s.fail("mask_fields", "JSON paths such as \"$.card.number\"",
               truncated(quote(p)) + " (" + e.what() + ")");
      }
    }
    try {
      payload_mask{{}, dl.mask_regex, dl.mask_with};
    } catch (const std::invalid_argument& e) {
      s.fail("mask_regex", "a valid ECMAScript regular expression",
             truncated(quote(dl.mask_regex)) + " (" + e.what() + ")");
    }
  }
  {
    section s(top.table("transport"), "transport", {"type", "memory", "redis"}, raw);
    std::string type = cfg.transport.type;
    s.string("type", type);
    if (type != "memory" && type != "redis") {
      bool later = type == "kafka" || type == "sqs";
      s.fail("type", "one of \"memory\", \"redis\"",
             truncated(quote(type)) + (later ? " (not available yet)" : ""));
    }
    cfg.transport.type = type;
    auto& m = cfg.transport.memory;
    section ms(s.table("memory"), s.path("memory"),
               {"visibility_timeout_ms", "capacity", "capacity_bytes"},
               raw);
    ms.duration<milliseconds>("visibility_timeout_ms", m.visibility_timeout, 1,
                              "milliseconds");
    ms.integer("capacity", m.capacity, 1, max_in_flight_limit);
    ms.integer("capacity_bytes", m.capacity_bytes, 1, max_capacity_bytes, "bytes");

    auto& rt = cfg.transport.redis;
    section rs(s.table("redis"), s.path("redis"),
               {"stream", "group", "consumer", "group_start_id", "payload_field",
                "key_field", "ordering_key_field", "topic", "block_ms", "min_idle_ms",
                "recovery_interval_ms", "retry_check_interval_ms", "max_deliveries",
                "dlq_stream", "retry_zset", "errors_hash", "delete_consumer_on_close"},
               raw);
    // Names Redis takes as given: NUL is the one byte that cannot pass.
    auto name = [&](std::string_view key, std::string& out, bool required,
                    const char* what) {
      rs.string(key, out);
      if (out.find('\0') != std::string::npos || (required && out.empty())) {
        rs.fail(key, what, truncated(quote(out)));
      }
    };
    bool on_redis = type == "redis";
    name("stream", rt.stream, on_redis,
         "a non-empty stream name (required when transport.type is \"redis\")");
    name("group", rt.group, true, "a non-empty consumer group name");
    name("consumer", rt.consumer, false,
         "a consumer name without NUL, or \"\" to generate one");
    name("group_start_id", rt.group_start_id, true,
         "a stream id such as \"0\" (every entry) or \"$\" (only new ones)");
    name("payload_field", rt.payload_field, false,
         "a field name without NUL, or \"\" for entries without a payload field");
    name("key_field", rt.key_field, false,
         "a field name without NUL, or \"\" to key by entry id");
    name("ordering_key_field", rt.ordering_key_field, false,
         "a field name without NUL, or \"\" to order by the idempotency key");
    name("topic", rt.topic, false, "a topic without NUL, or \"\" for the stream name");
    rs.duration<milliseconds>("block_ms", rt.block, 1, "milliseconds");
    rs.duration<milliseconds>("min_idle_ms", rt.min_idle, 1, "milliseconds");
    rs.duration<milliseconds>("recovery_interval_ms", rt.recovery_interval, 0,
                              "milliseconds");
    rs.duration<milliseconds>("retry_check_interval_ms", rt.retry_check_interval, 0,
                              "milliseconds");
    rs.integer("max_deliveries", rt.max_deliveries, 0);
    name("dlq_stream", rt.dlq_stream, false,
         "a stream name without NUL, or \"\" for \"<stream>:dlq\"");
    name("retry_zset", rt.retry_zset, false,
         "a key without NUL, or \"\" for \"<stream>:retry\"");
    name("errors_hash", rt.errors_hash, false,
         "a key without NUL, or \"\" for \"<stream>:errors\"");
    rs.boolean("delete_consumer_on_close", rt.delete_consumer_on_close);
    if (!is_stream_start_id(rt.group_start_id)) {
      rs.fail("group_start_id",
              "\"0\" (every entry), \"$\" (only new ones) or a stream id such as "
              "\"1700000000000-0\"",
              truncated(quote(rt.group_start_id)));
    }
    // The transport's own keys must not be the stream: a dead-letter written
    // to the stream it came from would be read and dead-lettered again.
    for (auto [key, value] : {std::pair<std::string_view, const std::string*>{
                                  "dlq_stream", &rt.dlq_stream},
                              {"retry_zset", &rt.retry_zset},
                              {"errors_hash", &rt.errors_hash}}) {
      if (on_redis && !value->empty() && *value == rt.stream) {
        rs.fail(key, "a key other than transport.redis.stream (" + quote(rt.stream) + ")",
                truncated(quote(*value)));
      }
    }
    if (on_redis && rt.min_idle <= ec.engine.handler_timeout) {
      rs.fail("min_idle_ms",
              "more than engine.handler_timeout_ms (" +
                  std::to_string(ec.engine.handler_timeout.count()) +
                  ") so XAUTOCLAIM never takes over an entry a handler still runs",
              std::to_string(rt.min_idle.count()));
    }
    if (on_redis && rt.max_deliveries != 0 && rt.max_deliveries < ec.retry.max_attempts) {
      rs.fail("max_deliveries",
              "0 or at least retry.max_attempts (" +
                  std::to_string(ec.retry.max_attempts) +
                  ") so an entry still within its retry budget is not dead-lettered for "
                  "its delivery count",
              std::to_string(rt.max_deliveries));
    }
    if (s.find("type") == nullptr) {
      // An empty or truncated file (a config mount gone wrong) must not start
      // the built-in demo and look like a working service.
      s.fail("type", "one of \"memory\", \"redis\" (required: say which transport to "
                     "consume from)",
             "nothing");
    }
  }
  {
    auto& g = cfg.source.generator;
    section s(top.table("source"), "source",
              {"type", "messages", "duplicate_ratio", "poison_ratio", "flaky_ratio",
               "payload_bytes", "topics", "seed"},
              raw);
    // The generator feeds only the memory transport: with "redis" the
    // default becomes "none" and an explicit "generator" is an error.
    bool streams = cfg.transport.type == "redis";
    if (streams) {
      cfg.source.type = "none";
    }
    s.one_of("type", cfg.source.type, {"generator", "none"});
    if (streams && cfg.source.type != "none") {
      s.fail("type",
             "\"none\" when transport.type is \"redis\" (the generator feeds only the "
             "memory transport)",
             quote(cfg.source.type));
    }
    s.integer("messages", g.messages, 0);
    s.ratio("duplicate_ratio", g.duplicate_ratio);
    s.ratio("poison_ratio", g.poison_ratio);
    s.ratio("flaky_ratio", g.flaky_ratio);
    if (g.poison_ratio + g.flaky_ratio > 1.0) {
      s.fail("flaky_ratio",
             "at most 1 - source.poison_ratio (" + fmt_double(1.0 - g.poison_ratio) + ")",
             fmt_double(g.flaky_ratio));
    }
    s.integer("payload_bytes", g.payload_bytes, 0, max_payload_bytes);
    if (s.strings("topics", g.topics)) {
      if (g.topics.empty()) {
        s.fail("topics", "a non-empty array of strings", "[]");
      }
      for (const auto& t : g.topics) {
        if (t.empty()) {
          s.fail("topics", "non-empty topic names", "\"\"");
        }
      }
    }
    s.integer("seed", g.seed, 0);
  }
  cfg.default_handler = read_handler(top.table("handler"), "handler", raw);
  if (const auto* hs = top.table("handlers")) {
    for (auto&& [k, v] : *hs) {
      std::string topic(k.str());
      std::string path = join("handlers", topic);
      if (topic.empty()) {
        throw config_error(path, "expected a non-empty topic name, got \"\"");
      }
      if (!v.is_table()) {
        throw config_error(path, "expected table, got " + describe(v));
      }
      cfg.topic_handlers[topic] = read_handler(v.as_table(), path, raw);
    }
  }
  {
    section s(top.table("progress"), "progress", {"enabled", "interval_ms", "heartbeat_ms"},
              raw);
    s.boolean("enabled", cfg.progress.enabled);
    s.duration<milliseconds>("interval_ms", cfg.progress.interval, 1, "milliseconds");
    s.duration<milliseconds>("heartbeat_ms", cfg.progress.heartbeat, 1, "milliseconds");
  }
  return cfg;
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) {
    return {};
  }
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

[[noreturn]] void bad_override(const std::string& text, const std::string& got) {
  throw config_error(
      text, "expected --set KEY=VALUE (for example engine.workers=8), got " + got);
}

std::vector<std::string> split_key(const std::string& key, const std::string& text) {
  std::vector<std::string> segs;
  std::string cur;
  bool quoted_seg = false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c == '"' || c == '\'') {
      auto end = key.find(c, i + 1);
      if (end == std::string::npos) {
        bad_override(text, "an unterminated quote");
      }
      cur += key.substr(i + 1, end - i - 1);
      quoted_seg = true;
      i = end;
    } else if (c == '.') {
      if (trim(cur).empty() && !quoted_seg) {
        bad_override(text, "an empty key segment");
      }
      segs.push_back(quoted_seg ? cur : trim(cur));
      cur.clear();
      quoted_seg = false;
    } else {
      cur += c;
    }
  }
  if (trim(cur).empty() && !quoted_seg) {
    bad_override(text, key.empty() ? "an empty key" : "an empty key segment");
  }
  segs.push_back(quoted_seg ? cur : trim(cur));
  return segs;
}

std::size_t find_equals(const std::string& s) {
  char quote_char = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (quote_char != 0) {
      if (s[i] == quote_char) {
        quote_char = 0;
      }
    } else if (s[i] == '"' || s[i] == '\'') {
      quote_char = s[i];
    } else if (s[i] == '=') {
      return i;
    }
  }
  return std::string::npos;
}

void apply_override(toml::table& root, const std::string& text, raw_overrides& raw) {
  auto eq = find_equals(text);
  if (eq == std::string::npos) {
    bad_override(text, "no '='");
  }
  std::string key = trim(std::string_view(text).substr(0, eq));
  std::string value = trim(std::string_view(text).substr(eq + 1));
  auto segs = split_key(key, text);

  toml::table* t = &root;
  std::string path;
  for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
    path = join(path, segs[i]);
    auto* n = t->get(segs[i]);
    if (n == nullptr) {
      n = t->insert(segs[i], toml::table{}).first->second.as_table();
    }
    if (!n->is_table()) {
      throw config_error(path, "expected table, got " + describe(*n) + " (from --set " +
                                   quote(text) + ")");
    }
    t = n->as_table();
  }
  const std::string& last = segs.back();
  path = join(path, last);

  std::optional<toml::table> parsed;
  try {
    parsed = toml::parse(std::string_view("v = " + value), std::string_view("--set"));
  } catch (const toml::parse_error&) {
    parsed.reset();
  }
  if (parsed && parsed->size() == 1 && parsed->contains("v")) {
    parsed->get("v")->visit([&](auto&& v) { t->insert_or_assign(last, std::move(v)); });
    raw[path] = value;
  } else {
    t->insert_or_assign(last, value);
    raw.erase(path);
  }
}

toml::table parse_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw config_error("", "cannot read config file " + quote(path) + ": is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw config_error("", "cannot read config file " + quote(path) + ": " +
                               std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw config_error("", "cannot read config file " + quote(path));
  }
  try {
    return toml::parse(std::string_view(text.str()), std::string_view(path));
  } catch (const toml::parse_error& e) {
    throw config_error("", "syntax error in " + path + " at line " +
                               std::to_string(e.source().begin.line) + ", column " +
                               std::to_string(e.source().begin.column) + ": " +
                               std::string(e.description()));
  }
}

std::string val(bool b) {
  return b ? "true" : "false";
}
std::string val(double d) {
  return fmt_double(d);
}
std::string val(const std::string& s) {
  return quote(s);
}

template <class T, class = std::enable_if_t<std::is_integral_v<T>>> std::string val(T v) {
  return std::to_string(v);
}

template <class Rep, class Period> std::string val(std::chrono::duration<Rep, Period> d) {
  return std::to_string(d.count());
}

std::string val(const std::vector<std::string>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    s += (i == 0 ? "" : ", ") + quote(v[i]);
  }
  return s + "]";
}

class renderer {
public:
  void table(const std::string& path) {
    out_ << (first_ ? "" : "\n") << "[" << path << "]\n";
    first_ = false;
  }

  template <class T> void kv(std::string_view name, const T& value) {
    out_ << key_text(name) << " = "
         << (is_secret_key(std::string(name)) ? quote("<redacted>") : val(value)) << "\n";
  }

  // For schema keys whose name matches the secret rule but whose value is
  // not a secret, such as `redis.password_env` (a variable's name).
  template <class T> void kv_shown(std::string_view name, const T& value) {
    out_ << key_text(name) << " = " << val(value) << "\n";
  }

  void env(const std::vector<std::pair<std::string, std::string>>& vars) {
    out_ << "env = {";
    for (std::size_t i = 0; i < vars.size(); ++i) {
      const auto& [name, value] = vars[i];
      out_ << (i == 0 ? " " : ", ") << key_text(name) << " = "
           << quote(is_secret_key(name) ? "<redacted>" : value);
    }
    out_ << (vars.empty() ? "}\n" : " }\n");
  }

  void comment(const std::string& text) {
    std::string clean = text;
    std::replace_if(
        clean.begin(), clean.end(),
        [](char c) { return static_cast<unsigned char>(c) < 0x20; }, ' ');
    out_ << "# " << clean << "\n";
  }

  std::string str() const { return out_.str(); }

private:
  std::ostringstream out_;
  bool first_ = true;
};

template <class E>
std::string enum_name(E v, const std::vector<std::pair<const char*, E>>& names) {
  for (auto& n : names) {
    if (n.second == v) {
      return n.first;
    }
  }
  return "unknown";
}

void render_handler(renderer& r, const std::string& path, const handler_spec& h) {
  r.table(path);
  r.kv("type", h.type);
  r.kv("latency_us", std::chrono::duration_cast<std::chrono::microseconds>(h.latency));
  r.kv("command", h.command);
  r.env(h.env);
  r.kv("env_clear", h.env_clear);
}

} // namespace

std::string closest_word(std::string_view word, const std::vector<std::string>& known) {
  return std::string{closest(word, known)};
}

bool is_secret_key(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* word : {"password", "secret", "token", "credential", "key_id"}) {
    if (lower.find(word) != std::string::npos) {
      return true;
    }
  }
  return false;
}

app_config load_config(const std::string& path,
                       const std::vector<std::string>& overrides) {
  toml::table root = parse_file(path);
  raw_overrides raw;
  for (const auto& o : overrides) {
    apply_override(root, o, raw);
  }
  app_config cfg = build(root, raw);
  // The connection reads the variable at each connect; checking it here too
  // turns a missing one into a config error that `validate` reports and that
  // stops `run` before anything starts.
  const auto& name = cfg.redis.password_env;
  if (cfg.uses_redis() && !name.empty() && std::getenv(name.c_str()) == nullptr) {
    throw config_error("redis.password_env",
                       "expected the name of a set environment variable (it holds the "
                       "Redis password), got " +
                           quote(name) + ", which is not set in this environment");
  }
  cfg.source_file = path;
  return cfg;
}

std::string render_config(const app_config& cfg) {
  using std::chrono::duration_cast;
  const auto& ec = cfg.engine_cfg;
  renderer r;
  if (!cfg.source_file.empty()) {
    r.comment("Effective mailroom configuration, loaded from " + cfg.source_file);
  } else {
    r.comment("Effective mailroom configuration");
  }

  r.table("log");
  r.kv("level", cfg.log.level);
  r.kv("format", cfg.log.format);

  const auto& e = ec.engine;
  r.table("engine");
  r.kv("max_in_flight", e.max_in_flight);
  r.kv("workers", e.workers);
  r.kv("batch_size", e.batch_size);
  r.kv("poll_wait_ms", duration_cast<milliseconds>(e.poll_wait));
  r.kv("handler_timeout_ms", duration_cast<milliseconds>(e.handler_timeout));
  r.kv("ordering", enum_name(e.ordering, {{"unordered", ordering_mode::unordered},
                                          {"per_key", ordering_mode::per_key}}));
  r.kv("unknown_topic",
       enum_name(e.unknown_topic, {{"ack", unknown_topic_policy::ack},
                                   {"dead_letter", unknown_topic_policy::dead_letter}}));
  r.kv("drain_timeout_ms", duration_cast<milliseconds>(e.drain_timeout));
  r.kv("restart_backoff_base_ms", duration_cast<milliseconds>(e.restart_backoff_base));
  r.kv("restart_backoff_cap_ms", duration_cast<milliseconds>(e.restart_backoff_cap));
  r.kv("stop_when_exhausted", e.stop_when_exhausted);

  r.table("retry");
  r.kv("base_ms", duration_cast<milliseconds>(ec.retry.base));
  r.kv("cap_ms", duration_cast<milliseconds>(ec.retry.cap));
  r.kv("max_attempts", ec.retry.max_attempts);

  const auto& d = ec.dedupe;
  r.table("dedupe");
  r.kv("enabled", d.enabled);
  r.kv("store", cfg.dedupe_store);
  r.kv("claim_ttl_ms", duration_cast<milliseconds>(d.claim_ttl));
  r.kv("result_ttl_ms", duration_cast<milliseconds>(d.result_ttl));
  r.kv("in_flight_delay_ms", duration_cast<milliseconds>(d.in_flight_delay));
  r.kv("on_store_error",
       enum_name(d.on_store_error, {{"fail_open", store_failure_policy::fail_open},
                                    {"fail_closed", store_failure_policy::fail_closed}}));
  r.kv("store_error_delay_ms", duration_cast<milliseconds>(d.store_error_delay));
  r.kv("scope", enum_name(d.scope, {{"topic", dedupe_scope::topic},
                                    {"global", dedupe_scope::global}}));

  const auto& w = ec.sweeper;
  r.table("sweeper");
  r.kv("enabled", w.enabled);
  r.kv("store", cfg.sweeper_store);
  r.kv("interval_ms", duration_cast<milliseconds>(w.interval));
  r.kv("stale_cutoff_ms", duration_cast<milliseconds>(w.stale_cutoff));
  r.kv("limit", w.limit);

  const auto& rs = cfg.redis;
  r.table("redis");
  r.kv("host", rs.host);
  r.kv("port", rs.port);
  r.kv("db", rs.db);
  r.kv("username", rs.username);
  r.kv_shown("password_env", rs.password_env);
  r.kv("connect_timeout_ms", rs.connect_timeout);
  r.kv("command_timeout_ms", rs.command_timeout);
  r.kv("keep_alive", rs.keep_alive);
  r.kv("key_prefix", rs.key_prefix);

  r.table("dead_letter");
  r.kv("mask_fields", ec.dead_letter.mask_fields);
  r.kv("mask_regex", ec.dead_letter.mask_regex);
  r.kv("mask_with", ec.dead_letter.mask_with);
  r.kv("on_unparsable", enum_name(ec.dead_letter.on_unparsable,
                                  {{"redact", unparsable_policy::redact},
                                   {"regex", unparsable_policy::regex},
                                   {"keep", unparsable_policy::keep}}));

  r.table("transport");
  r.kv("type", cfg.transport.type);
  r.table("transport.memory");
  r.kv("visibility_timeout_ms",
       duration_cast<milliseconds>(cfg.transport.memory.visibility_timeout));
  r.kv("capacity", cfg.transport.memory.capacity);
  r.kv("capacity_bytes", cfg.transport.memory.capacity_bytes);
  const auto& rt = cfg.transport.redis;
  r.table("transport.redis");
  r.kv("stream", rt.stream);
  r.kv("group", rt.group);
  r.kv("consumer", rt.consumer);
  r.kv("group_start_id", rt.group_start_id);
  r.kv("payload_field", rt.payload_field);
  r.kv_shown("key_field", rt.key_field);
  r.kv_shown("ordering_key_field", rt.ordering_key_field);
  r.kv("topic", rt.topic);
  r.kv("block_ms", rt.block);
  r.kv("min_idle_ms", rt.min_idle);
  r.kv("recovery_interval_ms", rt.recovery_interval);
  r.kv("retry_check_interval_ms", rt.retry_check_interval);
  r.kv("max_deliveries", rt.max_deliveries);
  r.kv("dlq_stream", rt.dlq_stream);
  r.kv("retry_zset", rt.retry_zset);
  r.kv("errors_hash", rt.errors_hash);
  r.kv("delete_consumer_on_close", rt.delete_consumer_on_close);

  const auto& g = cfg.source.generator;
  r.table("source");
  r.kv("type", cfg.source.type);
  r.kv("messages", g.messages);
  r.kv("duplicate_ratio", g.duplicate_ratio);
  r.kv("poison_ratio", g.poison_ratio);
  r.kv("flaky_ratio", g.flaky_ratio);
  r.kv("payload_bytes", g.payload_bytes);
  r.kv("topics", g.topics);
  r.kv("seed", g.seed);

  render_handler(r, "handler", cfg.default_handler);
  for (const auto& [topic, h] : cfg.topic_handlers) {
    render_handler(r, join("handlers", topic), h);
  }

  r.table("progress");
  r.kv("enabled", cfg.progress.enabled);
  r.kv("interval_ms", duration_cast<milliseconds>(cfg.progress.interval));
  r.kv("heartbeat_ms", duration_cast<milliseconds>(cfg.progress.heartbeat));
  return r.str();
}

} // namespace mailroom
