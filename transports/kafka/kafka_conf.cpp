#include "transports/kafka/kafka_conf.hpp"

#include <cstdlib>

#include <spdlog/spdlog.h>

namespace mailroom::kafka {

namespace {

// Properties mailroom sets and a user may not: the commit protocol depends
// on them.
const char* const managed[] = {"enable.auto.commit", "enable.auto.offset.store",
                               "group.id", "bootstrap.servers", "enable.partition.eof"};

// What a dead-letter producer takes of the user's properties: how to reach
// and authenticate to the brokers, not the consumer's tuning.
bool producer_takes(const std::string& name) {
  for (const char* prefix : {"security.", "sasl.", "ssl.", "socket.", "broker.", "api.version",
                             "client.dns.", "reconnect.", "retry.backoff", "debug",
                             "log_level", "metadata.", "topic.metadata."}) {
    if (name.rfind(prefix, 0) == 0) {
      return true;
    }
  }
  return false;
}

bool is_managed(const std::string& name) {
  for (const char* m : managed) {
    if (name == m) {
      return true;
    }
  }
  return false;
}

constexpr std::string_view env_prefix = "env:";

// librdkafka's own log lines go through spdlog (its format, its level, JSON
// logs included) instead of straight to stderr. Its errors are mostly
// broker connections it retries by itself: warnings here; its notices are
// debug detail.
void log_line(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  auto lvl = level <= 4 ? spdlog::level::warn
             : level <= 6 ? spdlog::level::debug
                          : spdlog::level::trace;
  spdlog::log(lvl, "librdkafka {} {}: {}", rk != nullptr ? rd_kafka_name(rk) : "", fac, buf);
}

bool from_env(const std::string& value) { return value.rfind(env_prefix, 0) == 0; }

} // namespace

bool is_secret_property(const std::string& name) {
  for (const char* word : {"password", "secret", "ssl.key.pem", "ssl.keystore", "jaas",
                           "oauthbearer.config", "token", "credential"}) {
    if (name.find(word) != std::string::npos) {
      return true;
    }
  }
  return false;
}

property_list consumer_properties(const kafka_settings& s) {
  property_list out{{"bootstrap.servers", s.brokers},
                    {"group.id", s.group_id},
                    {"client.id", s.client_id},
                    {"auto.offset.reset", s.auto_offset_reset},
                    {"enable.auto.commit", "false"},
                    {"enable.auto.offset.store", "false"},
                    {"enable.partition.eof", "false"},
                    // With 100,000 (librdkafka's default) a consumer as fast
                    // as the engine spends most of its time waiting for
                    // fetches: 0.15 of the rate measured in bench/, against
                    // 0.5 here. Higher still (1,000,000) gains a little more
                    // and costs tens of ms of latency at low rates. The
                    // pre-fetch stays bounded by queued.max.messages.kbytes.
                    {"queued.min.messages", "300000"}};
  out.insert(out.end(), s.properties.begin(), s.properties.end());
  return out;
}

property_list producer_properties(const kafka_settings& s) {
  property_list out{{"bootstrap.servers", s.brokers},
                    {"client.id", s.client_id + "-dlq"},
                    {"enable.idempotence", "true"},
                    // A write's report comes within this, success or failure:
                    // the dead-letter actor waits for it.
                    {"message.timeout.ms", "10000"}};
  for (const auto& p : s.properties) {
    if (producer_takes(p.first)) {
      out.push_back(p);
    }
  }
  return out;
}

property_list shown(const property_list& props) {
  property_list out;
  out.reserve(props.size());
  for (const auto& [name, value] : props) {
    bool hide = is_secret_property(name) && !from_env(value);
    out.emplace_back(name, hide ? "<redacted>" : value);
  }
  return out;
}

std::vector<setting_problem> property_problems(const kafka_settings& s) {
  std::vector<setting_problem> out;
  conf_ptr conf{rd_kafka_conf_new()};
  char err[512];
  for (const auto& [name, value] : s.properties) {
    // A dotted property is one TOML key: quoted in the path.
    auto key = "properties.\"" + name + "\"";
    auto got = is_secret_property(name) ? std::string{"<redacted>"} : shown_value(value);
    if (is_managed(name)) {
      out.push_back({key, "a property mailroom does not set itself (it manages " + name + ")",
                     got});
      continue;
    }
    // The variable may only exist where the consumer runs: its value is
    // checked when the transport starts.
    auto checked = from_env(value) ? std::string{} : value;
    if (from_env(value) || rd_kafka_conf_set(conf.get(), name.c_str(), checked.c_str(), err,
                                             sizeof err) == RD_KAFKA_CONF_OK) {
      continue;
    }
    out.push_back({key, std::string{"a property librdkafka accepts ("} + err + ")", got});
  }
  return out;
}

conf_ptr make_conf(const property_list& props, std::string& error) {
  conf_ptr conf{rd_kafka_conf_new()};
  char err[512];
  for (const auto& [name, raw] : props) {
    std::string value = raw;
    if (from_env(raw)) {
      auto var = raw.substr(env_prefix.size());
      const char* v = std::getenv(var.c_str());
      if (v == nullptr) {
        error = "kafka property " + name + ": environment variable " + var + " is not set";
        return nullptr;
      }
      value = v;
    }
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), err, sizeof err) !=
        RD_KAFKA_CONF_OK) {
      // librdkafka's text may quote the value: a secret's is not shown.
      error = "kafka property " + name + ": " +
              (is_secret_property(name) ? std::string{"rejected"} : std::string{err});
      return nullptr;
    }
  }
  rd_kafka_conf_set_log_cb(conf.get(), &log_line);
  return conf;
}

} // namespace mailroom::kafka
