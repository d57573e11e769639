#include "app/run_app.hpp"

#include <atomic>
#include <csignal>
#include <functional>
#include <memory>
#include <cstdio>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "app/app_config_schema.hpp"
#include "app/engine_assembly.hpp"
#include "app/http_endpoint.hpp"
#include "app/metrics_exposition.hpp"
#include "app/readiness.hpp"
#include "app/logging.hpp"
#include "app/run_report.hpp"
#include "core/engine_config_schema.hpp"
#include "mailroom/engine.hpp"

namespace mailroom {

namespace {

// Signals are taken by one thread with sigtimedwait, so no handler runs in
// async-signal context: the first asks the engine to drain, a second exits
// at once.
class signal_watch {
public:
  signal_watch(engine& e, std::function<void()> on_drain)
      : engine_(e), on_drain_(std::move(on_drain)) {
    thread_ = std::thread([this] { run(); });
  }

  ~signal_watch() {
    done_.store(true);
    thread_.join();
  }

  static void block_in_this_thread() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

  bool signalled() const { return count_.load() > 0; }

private:
  void run() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    timespec tick{0, 100 * 1000 * 1000};
    while (!done_.load()) {
      int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig <= 0) {
        continue;
      }
      if (count_.fetch_add(1) == 0) {
        spdlog::warn("received {}: draining (send it again to exit at once)",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
        if (on_drain_) {
          on_drain_(); // before the drain, so /readyz says so at once
        }
        engine_.request_stop();
      } else {
        static const char msg[] = "mailroom: second signal, exiting now\n";
        [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
        std::_Exit(130);
      }
    }
  }

  engine& engine_;
  std::function<void()> on_drain_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<int> count_{0};
};

// /metrics, /healthz and /readyz of one run, when [http] listen is set.
class operator_endpoints {
public:
  operator_endpoints(const app_config& cfg, engine& e, transport& t)
      : ready_(cfg, t), engine_(e), transport_(t),
        max_in_flight_(static_cast<std::int64_t>(cfg.engine_cfg.engine.max_in_flight)) {
    auto address = split_listen_address(cfg.http.listen); // vetted by the config
    http_routes routes;
    routes.metrics = [this] { return metrics(); };
    routes.health = [this] {
      return engine_.stopped() ? http_answer{503, "text/plain", "stopped\n"}
                               : http_answer{200, "text/plain", "ok\n"};
    };
    routes.ready = [this] {
      auto r = ready_.check(engine_.metrics(), engine_.stopped());
      return http_answer{r.ready ? 200 : 503, "application/json", r.json + "\n"};
    };
    server_ = std::make_unique<http_endpoint>(address->first, address->second, routes);
    spdlog::info("http: /metrics, /healthz and /readyz on {}:{}", address->first,
                 server_->port());
  }

  void draining() { ready_.set_draining(); }

private:
  http_answer metrics() {
    exposition_input in;
    in.metrics = engine_.metrics();
    in.transport = transport_.name();
    in.max_in_flight = max_in_flight_;
    in.transport_gauges = transport_.gauges();
    in.draining = ready_.draining();
    in.ready = ready_.check(in.metrics, engine_.stopped()).ready;
    return {200, "text/plain; version=0.0.4; charset=utf-8", prometheus_text(in)};
  }

  readiness ready_;
  engine& engine_;
  transport& transport_;
  std::int64_t max_in_flight_;
  std::unique_ptr<http_endpoint> server_; // last: stopped before the rest goes
};

} // namespace

int run_app(const app_config& cfg, const transport_registry& registry) {
  configure_logging(cfg.log.level, cfg.log.format);
  signal_watch::block_in_this_thread(); // inherited by every thread started below

  auto assembled = assemble_engine(cfg, registry);
  auto& instance = assembled.instance;
  transport& t = *instance.transport;
  auto& engine_cfg = assembled.config;
  spdlog::info(
      "mailroom: {} transport, {} workers, max_in_flight {}, dedupe {}, ordering {}",
      t.name(), engine_cfg.engine.workers, engine_cfg.engine.max_in_flight,
      engine_cfg.dedupe.enabled ? "on" : "off", to_string(engine_cfg.engine.ordering));
  engine e{engine_cfg, std::move(assembled.parts)};
  run_report report{cfg.progress.heartbeat, cfg.log.format == "json"};
  // Bound before the engine starts: a port in use stops the start before
  // this process joins a consumer group or takes any message.
  std::unique_ptr<operator_endpoints> endpoints;
  if (!cfg.http.listen.empty()) {
    endpoints = std::make_unique<operator_endpoints>(cfg, e, t);
  }
  e.start();
  auto& source = instance.source;
  if (source) {
    source->start();
  }
  {
    signal_watch signals{e, [&endpoints] {
                           if (endpoints) {
                             endpoints->draining();
                           }
                         }};
    while (!e.wait_for(cfg.progress.interval)) {
      if (cfg.progress.enabled) {
        report.progress(e.metrics());
      }
      if (signals.signalled() && source) {
        source->stop();
      }
    }
  }
  if (source) {
    source->stop();
    source->join();
  }
  run_outcome outcome;
  outcome.exit = e.stop();
  auto m = e.metrics();
  outcome.dlq_depth = t.dead_letter_depth();
  outcome.transport_rows = t.stats_report();
  report.summary(m, outcome);
  const auto& exit = outcome.exit;
  if (!exit.failure.empty()) {
    std::fprintf(stderr, "mailroom: %s\n", exit.failure.c_str());
    return 1;
  }
  return 0;
}

} // namespace mailroom
