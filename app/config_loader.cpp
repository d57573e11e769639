#include "app/config_loader.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>

#include "app/app_config_schema.hpp"
#include "app/config_file.hpp"
#include "app/config_renderer.hpp"
#include "app/config_section.hpp"
#include "clients/redis/redis_settings_schema.hpp"
#include "core/engine_config_schema.hpp"

namespace mailroom {

config_error::config_error(std::string key, const std::string& problem)
    : std::runtime_error(key.empty() ? problem : key + ": " + problem),
      key_(std::move(key)) {}

namespace {

// One struct's keys within a table: where they go and the rules they obey.
struct section_part {
  const std::vector<setting>* keys;
  std::function<void*(app_config&)> target;
  std::function<std::vector<setting_problem>(app_config&)> rules;
};

// One table of the file and the parts it is read into.
struct section_binding {
  std::string path;
  std::vector<section_part> parts;
};

template <class S, class Get> section_part part(const settings_schema<S>& schema, Get get) {
  return {&schema.keys(), [get](app_config& c) -> void* { return &get(c); },
          [get, &schema](app_config& c) { return schema.check(get(c)); }};
}

// Throws the first of `problems`, its key (a dotted path, its segments
// quoted by whoever made it) relative to `path`.
void raise_first(const std::string& path, const std::vector<setting_problem>& problems) {
  if (problems.empty()) {
    return;
  }
  const auto& p = problems.front();
  throw config_error(path.empty() ? p.key : path + "." + p.key,
                     "expected " + p.expected + ", got " + p.got);
}

// The sections read the same way whatever the transport, in file order.
const std::vector<section_binding>& plain_sections() {
  static const std::vector<section_binding> sections{
      {"log", {part(log_schema(), [](app_config& c) -> auto& { return c.log; })}},
      {"engine",
       {part(engine_settings_schema(),
             [](app_config& c) -> auto& { return c.engine_cfg.engine; })}},
      {"retry",
       {part(retry_settings_schema(), [](app_config& c) -> auto& { return c.engine_cfg.retry; })}},
      {"dedupe",
       {part(dedupe_settings_schema(),
             [](app_config& c) -> auto& { return c.engine_cfg.dedupe; })}},
      {"sweeper",
       {part(sweeper_settings_schema(),
             [](app_config& c) -> auto& { return c.engine_cfg.sweeper; })}},
      {"redis", {part(redis_settings_schema(), [](app_config& c) -> auto& { return c.redis; })}},
      {"dead_letter",
       {part(dead_letter_settings_schema(),
             [](app_config& c) -> auto& { return c.engine_cfg.dead_letter; })}},
  };
  return sections;
}

const section_binding& progress_section() {
  static const section_binding progress{
      "progress", {part(progress_schema(), [](app_config& c) -> auto& { return c.progress; })}};
  return progress;
}

const section_binding& http_section() {
  static const section_binding http{
      "http", {part(http_schema(), [](app_config& c) -> auto& { return c.http; })}};
  return http;
}

const key_list top_keys{"log",         "engine",    "retry",  "dedupe",  "sweeper",
                        "redis",       "dead_letter", "transport", "source", "handler",
                        "handlers",    "progress",  "http"};

void read_binding(const config_section& top, const section_binding& b, app_config& cfg,
                  const raw_overrides& raw) {
  key_list known;
  for (const auto& p : b.parts) {
    auto names = names_of(*p.keys);
    known.insert(known.end(), names.begin(), names.end());
  }
  config_section s(top.table(b.path), b.path, known, raw);
  for (const auto& p : b.parts) {
    s.read_all(*p.keys, p.target(cfg));
  }
  for (const auto& p : b.parts) {
    raise_first(b.path, p.rules(cfg));
  }
}

// [transport]: the type, and the table of every registered transport.
void read_transport(const config_section& top, app_config& cfg,
                    const transport_registry& registry, const raw_overrides& raw) {
  auto names = registry.names();
  key_list known{"type"};
  known.insert(known.end(), names.begin(), names.end());
  config_section s(top.table("transport"), "transport", known, raw);
  std::string type = cfg.transport.type;
  s.string("type", type);
  key_list choices(names.begin(), names.end());
  if (s.find("type") != nullptr && registry.find(type) == nullptr) {
    auto why = registry.unavailable(type);
    s.fail("type", one_of_text(choices),
           shown_value(type) + (why.empty() ? "" : " (" + why + ")"));
  }
  for (const auto& kind : registry.kinds()) {
    auto box = kind.settings();
    auto path = join("transport", kind.name);
    config_section sub(s.table(kind.name), path, names_of(box->keys()), raw);
    sub.read_all(box->keys(), box->data());
    raise_first(path, box->check());
    cfg.transport.by_type[kind.name] = boxed_settings{std::move(box)};
  }
  if (s.find("type") == nullptr) {
    // An empty or truncated file (a config mount gone wrong) must not start
    // the built-in demo and look like a working service.
    s.fail("type", one_of_text(choices) + " (required: say which transport to consume from)",
           "nothing");
  }
  cfg.transport.type = type;
}

// [source]: only a transport the generator can feed takes "generator".
void read_source(const config_section& top, app_config& cfg,
                 const transport_registry& registry, const raw_overrides& raw) {
  bool feeds = registry.find(cfg.transport.type)->feeds_generator;
  if (!feeds) {
    cfg.source.type = "none";
  }
  key_list known = names_of(source_schema().keys());
  auto generator_keys = names_of(generator_schema().keys());
  known.insert(known.end(), generator_keys.begin(), generator_keys.end());
  config_section s(top.table("source"), "source", known, raw);
  s.read_all(source_schema().keys(), &cfg.source);
  if (!feeds && cfg.source.type != "none") {
    s.fail("type",
           "\"none\" when transport.type is " + toml_quoted(cfg.transport.type) +
               " (the generator feeds only the memory transport)",
           toml_quoted(cfg.source.type));
  }
  s.read_all(generator_schema().keys(), &cfg.source.generator);
  raise_first("source", generator_schema().check(cfg.source.generator));
}

handler_spec read_handler(const toml::table* t, const std::string& path,
                          const raw_overrides& raw) {
  handler_spec h;
  config_section s(t, path, names_of(handler_schema().keys()), raw);
  s.read_all(handler_schema().keys(), &h);
  raise_first(path, handler_schema().check(h));
  return h;
}

void read_handlers(const config_section& top, app_config& cfg, const raw_overrides& raw) {
  cfg.default_handler = read_handler(top.table("handler"), "handler", raw);
  const auto* hs = top.table("handlers");
  if (hs == nullptr) {
    return;
  }
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

app_config build(const toml::table& root, const raw_overrides& raw,
                 const transport_registry& registry) {
  app_config cfg;
  config_section top(&root, "", top_keys, raw);
  for (const auto& b : plain_sections()) {
    read_binding(top, b, cfg, raw);
  }
  read_transport(top, cfg, registry, raw);
  read_source(top, cfg, registry, raw);
  read_handlers(top, cfg, raw);
  read_binding(top, progress_section(), cfg, raw);
  read_binding(top, http_section(), cfg, raw);
  // Rules between sections, once everything is read.
  raise_first("", engine_config_problems(cfg.engine_cfg));
  const auto* selected = registry.find(cfg.transport.type);
  raise_first(join("transport", selected->name),
              selected->problems(*cfg.transport.by_type.at(selected->name), cfg));
  return cfg;
}

void render_binding(config_renderer& r, const section_binding& b, const app_config& cfg) {
  r.table(b.path);
  for (const auto& p : b.parts) {
    r.keys(*p.keys, p.target(const_cast<app_config&>(cfg)));
  }
}

void render_handler(config_renderer& r, const std::string& path, const handler_spec& h) {
  r.table(path);
  r.keys(handler_schema().keys(), &h);
}

} // namespace

std::string closest_word(std::string_view word, const std::vector<std::string>& known) {
  return closest_of(word, key_list(known.begin(), known.end()));
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

app_config load_config(const std::string& path, const std::vector<std::string>& overrides,
                       const transport_registry& registry) {
  toml::table root = parse_file(path);
  raw_overrides raw;
  for (const auto& o : overrides) {
    apply_override(root, o, raw);
  }
  app_config cfg = build(root, raw, registry);
  // The connection reads the variable at each connect; checking it here too
  // turns a missing one into a config error that `validate` reports and that
  // stops `run` before anything starts.
  const auto& name = cfg.redis.password_env;
  if (cfg.uses_redis() && !name.empty() && std::getenv(name.c_str()) == nullptr) {
    throw config_error("redis.password_env",
                       "expected the name of a set environment variable (it holds the "
                       "Redis password), got " +
                           toml_quoted(name) + ", which is not set in this environment");
  }
  cfg.source_file = path;
  return cfg;
}

std::string render_config(const app_config& cfg) {
  config_renderer r;
  r.comment(cfg.source_file.empty()
                ? "Effective mailroom configuration"
                : "Effective mailroom configuration, loaded from " + cfg.source_file);
  for (const auto& b : plain_sections()) {
    render_binding(r, b, cfg);
  }
  r.table("transport");
  setting type;
  type.name = "type";
  type.type = setting_type::text;
  type.get = [](const void* p) -> setting_value {
    return static_cast<const transport_settings*>(p)->type;
  };
  r.key(type, &cfg.transport);
  for (const auto& [name, box] : cfg.transport.by_type) {
    r.table(join("transport", name));
    r.keys(box->keys(), box->data());
  }
  r.table("source");
  r.keys(source_schema().keys(), &cfg.source);
  r.keys(generator_schema().keys(), &cfg.source.generator);
  render_handler(r, "handler", cfg.default_handler);
  for (const auto& [topic, h] : cfg.topic_handlers) {
    render_handler(r, join("handlers", topic), h);
  }
  render_binding(r, progress_section(), cfg);
  render_binding(r, http_section(), cfg);
  return r.str();
}

} // namespace mailroom
