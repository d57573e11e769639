#include "app/readiness.hpp"

#include <nlohmann/json.hpp>

#include "core/transport.hpp"

#ifdef MAILROOM_WITH_REDIS
#include "clients/redis/redis_connection.hpp"
#endif

namespace mailroom {

namespace {

constexpr std::chrono::seconds probe_every{1};

} // namespace

readiness::readiness(const app_config& cfg, transport& source)
    : source_(source), probe_timeout_(cfg.http.probe_timeout) {
#ifdef MAILROOM_WITH_REDIS
  if (cfg.uses_redis()) {
    auto s = cfg.redis;
    s.connect_timeout = cfg.http.probe_timeout;
    s.command_timeout = cfg.http.probe_timeout;
    redis_ = std::make_unique<redis_connection>(s);
  }
#endif
}

readiness::~readiness() = default;

void readiness::set_draining() { draining_.store(true); }

bool readiness::draining() const { return draining_.load(); }

std::vector<readiness::down> readiness::probe_stores() {
  std::vector<down> out;
#ifdef MAILROOM_WITH_REDIS
  if (redis_) {
    // connect() skips the reconnect backoff: a server back up is seen at once.
    auto r = redis_->connect();
    if (r) {
      r = redis_->command({"PING"}).status;
    }
    if (!r) {
      out.push_back({"redis", r.what});
    }
  }
#endif
  if (auto why = source_.unreachable(probe_timeout_); !why.empty()) {
    out.push_back({"transport", why});
  }
  return out;
}

readiness_report readiness::check(const metrics_snapshot& m, bool stopped) {
  std::vector<down> downs;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    auto now = std::chrono::steady_clock::now();
    if (probed_ == std::chrono::steady_clock::time_point{} || now - probed_ >= probe_every) {
      stores_down_ = probe_stores();
      probed_ = now;
    }
    downs = stores_down_;
  }
  const bool draining = draining_.load();
  if (stopped) {
    downs.push_back({"engine", "stopped"});
  }
  if (m.polls_failing > 0) {
    downs.push_back({"transport", std::to_string(m.polls_failing) + " polls failed in a row"});
  }
  nlohmann::json body;
  body["draining"] = draining;
  body["down"] = nlohmann::json::array();
  for (const auto& d : downs) {
    body["down"].push_back({{"component", d.component}, {"reason", d.reason}});
  }
  readiness_report out;
  out.ready = !draining && downs.empty();
  body["ready"] = out.ready;
  out.json = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return out;
}

} // namespace mailroom
