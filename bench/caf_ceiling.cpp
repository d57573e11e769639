#include "caf_ceiling.hpp"

#include <chrono>
#include <future>
#include <vector>

#include <caf/all.hpp>

#include "core/process_stats.hpp"
#include "cpu_time.hpp"

namespace mailroom::bench {
namespace {

using job_atom = caf::atom_constant<caf::atom("job")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;

using clock = std::chrono::steady_clock;

// ---- spawn per message -----------------------------------------------------

// Receives one message, tells the driver, quits.
caf::behavior one_shot(caf::event_based_actor* self, caf::actor driver) {
  return {[=](job_atom, std::uint64_t) {
    self->send(driver, done_atom::value);
    self->quit();
  }};
}

struct spawn_driver_state {
  std::uint64_t sent = 0;
  std::uint64_t completed = 0;
};

caf::behavior spawn_driver(caf::stateful_actor<spawn_driver_state>* self, std::uint64_t n,
                           std::uint64_t window, std::promise<void>* finished) {
  auto me = caf::actor_cast<caf::actor>(self);
  auto launch = [self, me] {
    auto worker = self->spawn(one_shot, me);
    self->send(worker, job_atom::value, self->state.sent++);
  };
  for (std::uint64_t i = 0; i < window && self->state.sent < n; ++i) {
    launch();
  }
  if (n == 0) {
    finished->set_value();
    self->quit();
    return {};
  }
  return {[=](done_atom) {
    auto& st = self->state;
    if (++st.completed == n) {
      finished->set_value();
      self->quit();
    } else if (st.sent < n) {
      launch();
    }
  }};
}

// ---- long-lived pool -----------------------------------------------------------

// Replies "done" to the driver for every message, until told to stop.
caf::behavior pool_member(caf::event_based_actor* self, caf::actor driver) {
  return {[=](job_atom, std::uint64_t) { self->send(driver, done_atom::value); },
          [=](stop_atom) { self->quit(); }};
}

struct pool_driver_state {
  std::vector<caf::actor> pool;
  std::uint64_t sent = 0;
  std::uint64_t completed = 0;
};

caf::behavior pool_driver(caf::stateful_actor<pool_driver_state>* self, std::uint64_t n,
                          std::uint64_t window, std::uint32_t actors,
                          std::promise<void>* finished) {
  auto me = caf::actor_cast<caf::actor>(self);
  for (std::uint32_t i = 0; i < actors; ++i) {
    self->state.pool.push_back(self->spawn(pool_member, me));
  }
  auto send_next = [self] {
    auto& st = self->state;
    self->send(st.pool[st.sent % st.pool.size()], job_atom::value, st.sent);
    ++st.sent;
  };
  auto finish = [self, finished] {
    for (auto& a : self->state.pool) {
      self->send(a, stop_atom::value);
    }
    self->state.pool.clear();
    finished->set_value();
    self->quit();
  };
  for (std::uint64_t i = 0; i < window && self->state.sent < n; ++i) {
    send_next();
  }
  if (n == 0) {
    finish();
    return {};
  }
  return {[=](done_atom) {
    auto& st = self->state;
    if (++st.completed == n) {
      finish();
    } else if (st.sent < n) {
      send_next();
    }
  }};
}

// Runs `spawn_fn(system, promise*)`, timing from just before the spawn to the
// driver's signal; the system is built before and destroyed after the clock.
template <class SpawnFn>
nlohmann::json timed(const char* kind, const ceiling_settings& s, SpawnFn spawn_fn) {
  double seconds = 0;
  std::size_t threads = 0;
  cpu_time cpu0, cpu1;
  {
    caf::actor_system_config cfg;
    caf::actor_system system{cfg};
    threads = system.scheduler().num_workers();
    std::promise<void> finished;
    auto done = finished.get_future();
    cpu0 = cpu_time::now();
    auto t0 = clock::now();
    spawn_fn(system, &finished);
    done.wait();
    seconds = std::chrono::duration<double>(clock::now() - t0).count();
    cpu1 = cpu_time::now();
    system.await_all_actors_done();
  }
  nlohmann::json r;
  r["kind"] = kind;
  r["messages"] = s.messages;
  r["window"] = s.window;
  r["max_in_flight"] = s.window;
  r["seconds"] = seconds;
  r["msgs_per_s"] = seconds > 0 ? static_cast<double>(s.messages) / seconds : 0.0;
  r["peak_rss_bytes"] = peak_rss_bytes();
  r["scheduler_threads"] = threads;
  r["check"] = "ok";
  r["cpu"] = cpu_report(cpu0, cpu1, s.messages, seconds);
  return r;
}

} // namespace

nlohmann::json run_spawn_ceiling(const ceiling_settings& s) {
  return timed("spawn", s, [&](caf::actor_system& sys, std::promise<void>* p) {
    sys.spawn(spawn_driver, s.messages, s.window, p);
  });
}

nlohmann::json run_long_lived_ceiling(const ceiling_settings& s) {
  auto r = timed("long_lived", s, [&](caf::actor_system& sys, std::promise<void>* p) {
    sys.spawn(pool_driver, s.messages, s.window, s.actors, p);
  });
  r["actors"] = s.actors;
  return r;
}

} // namespace mailroom::bench
