#include "redis_bench.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <thread>
#include <vector>

#include <hiredis/hiredis.h>
#include <mailroom/engine.hpp>

#include "app/builtin_handlers.hpp"
#include "child_process.hpp"
#include "core/process_stats.hpp"
#include "cpu_time.hpp"
#include "machine_info.hpp"
#include "options.hpp"
#include "stores/memory/memory_claim_store.hpp"
#include "stores/memory/memory_idempotency_store.hpp"
#include "redis_server_cost.hpp"
#include "stores/redis/redis_attempt_log.hpp"
#include "stores/redis/redis_claim_store.hpp"
#include "stores/redis/redis_idempotency_store.hpp"
#include "tests/support/redis_server.hpp"
#include "transports/redis/redis_streams_transport.hpp"

namespace mailroom::bench {
namespace {

using nlohmann::json;
using steady = std::chrono::steady_clock;

double micros(steady::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// p-th percentile (0..1) of `v` (sorted in place), 0 when empty.
double percentile(std::vector<double>& v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// A hiredis connection for the raw side; throws when it cannot connect.
struct raw_conn {
  redisContext* c = nullptr;
  explicit raw_conn(int port) {
    c = redisConnect("127.0.0.1", port);
    if (c == nullptr || c->err != 0) {
      throw std::runtime_error("cannot connect to redis on port " + std::to_string(port));
    }
  }
  ~raw_conn() { redisFree(c); }
  raw_conn(const raw_conn&) = delete;
  raw_conn& operator=(const raw_conn&) = delete;

  void append(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      throw std::runtime_error("redisAppendCommandArgv failed");
    }
  }
  // Takes ownership of one reply; throws on an I/O error or an error reply.
  std::unique_ptr<redisReply, void (*)(void*)> reply() {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK || r == nullptr) {
      throw std::runtime_error(std::string{"redis I/O error: "} + c->errstr);
    }
    auto* rr = static_cast<redisReply*>(r);
    if (rr->type == REDIS_REPLY_ERROR) {
      std::string text{rr->str, rr->len};
      freeReplyObject(rr);
      throw std::runtime_error("redis error reply: " + text);
    }
    return {rr, freeReplyObject};
  }
};

// XADDs `n` entries (a 64-byte `payload` field) to `stream`, 1000 per round trip.
void fill_stream(int port, const std::string& stream, std::uint64_t n) {
  raw_conn rc{port};
  const std::string payload(64, 'x');
  for (std::uint64_t done = 0; done < n;) {
    std::uint64_t chunk = std::min<std::uint64_t>(1000, n - done);
    for (std::uint64_t i = 0; i < chunk; ++i) {
      rc.append({"XADD", stream, "*", "payload", payload});
    }
    for (std::uint64_t i = 0; i < chunk; ++i) {
      rc.reply();
    }
    done += chunk;
  }
}

json base_report(const char* kind, const redis_run_settings& s) {
  return {{"kind", kind}, {"messages", s.messages}, {"port", s.port}};
}

} // namespace

json run_redis_claims(const redis_run_settings& s) {
  redis_settings rs;
  rs.port = s.port;
  rs.key_prefix = "bench:" + s.name + ":";
  redis_idempotency_store store{rs};
  if (auto st = store.connection().connect(); !st) {
    auto r = base_report("redis-claims", s);
    r["check"] = "FAILED: cannot connect";
    return r;
  }
  std::vector<std::string> keys(s.messages);
  for (std::uint64_t i = 0; i < s.messages; ++i) {
    keys[i] = "k" + std::to_string(i);
  }
  std::vector<double> lat;
  lat.reserve(s.messages / s.batch + 1);
  std::uint64_t fresh = 0;
  std::uint64_t other = 0;
  std::vector<std::string_view> batch;
  auto cpu0 = cpu_time::now();
  auto t0 = steady::now();
  for (std::uint64_t i = 0; i < s.messages; i += s.batch) {
    batch.clear();
    for (std::uint64_t j = i; j < std::min<std::uint64_t>(i + s.batch, s.messages); ++j) {
      batch.emplace_back(keys[j]);
    }
    auto c0 = steady::now();
    auto res = store.claim(batch, std::chrono::milliseconds{60000});
    lat.push_back(micros(steady::now() - c0));
    for (auto& x : res) {
      (x.status == claim_result::state::fresh ? fresh : other) += 1;
    }
  }
  auto t1 = steady::now();
  auto cpu1 = cpu_time::now();
  double secs = std::chrono::duration<double>(t1 - t0).count();
  auto r = base_report("redis-claims", s);
  r["batch"] = s.batch;
  r["seconds"] = secs;
  r["msgs_per_s"] = static_cast<double>(s.messages) / secs;
  r["p50_us"] = percentile(lat, 0.50);
  r["p99_us"] = percentile(lat, 0.99);
  r["latency_of"] = "one claim() call of a batch";
  r["fresh"] = fresh;
  r["peak_rss_bytes"] = peak_rss_bytes();
  r["cpu"] = cpu_report(cpu0, cpu1, s.messages, secs);
  r["check"] = fresh == s.messages ? "ok"
                                   : "NOT ALL FRESH: " + std::to_string(other) + " of " +
                                         std::to_string(s.messages) + " were not";
  return r;
}

json run_redis_raw_stream(const redis_run_settings& s) {
  const std::string stream = "bench:" + s.name;
  fill_stream(s.port, stream, s.messages);
  raw_conn rc{s.port};
  rc.append({"XGROUP", "CREATE", stream, "g", "0"});
  rc.reply();

  std::vector<std::string> prev; // ids of the previous batch, acked with the next read
  std::vector<double> lat;
  std::uint64_t read = 0;
  std::uint64_t claimed = 0;
  long long acked = 0;
  const std::string claim_prefix = "bench:" + s.name + ":d:";
  auto server0 = snapshot_redis_server(s.port);
  auto cpu0 = cpu_time::now();
  auto t0 = steady::now();
  for (;;) {
    auto c0 = steady::now();
    bool ack = !prev.empty();
    // The honest raw baseline for dedupe: one SET NX PX GET per entry (the
    // claim, by entry id), pipelined with the XACK and the next read.
    if (ack && s.redis_dedupe) {
      for (const auto& id : prev) {
        rc.append({"SET", claim_prefix + id, "1", "NX", "PX", "60000", "GET"});
      }
    }
    if (ack) {
      std::vector<std::string> cmd{"XACK", stream, "g"};
      cmd.insert(cmd.end(), prev.begin(), prev.end());
      rc.append(cmd);
    }
    rc.append({"XREADGROUP", "GROUP", "g", "c", "COUNT", "100", "STREAMS", stream, ">"});
    if (ack && s.redis_dedupe) {
      for (std::size_t i = 0; i < prev.size(); ++i) {
        claimed += rc.reply()->type == REDIS_REPLY_NIL ? 1 : 0;
      }
    }
    if (ack) {
      acked += rc.reply()->integer;
    }
    auto r = rc.reply();
    lat.push_back(micros(steady::now() - c0));
    prev.clear();
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
      auto* entries = r->element[0]->element[1];
      for (std::size_t i = 0; i < entries->elements; ++i) {
        auto* id = entries->element[i]->element[0];
        prev.emplace_back(id->str, id->len);
      }
    }
    if (prev.empty()) {
      break;
    }
    read += prev.size();
  }
  auto t1 = steady::now();
  auto cpu1 = cpu_time::now();
  auto server1 = snapshot_redis_server(s.port);
  double secs = std::chrono::duration<double>(t1 - t0).count();
  auto r = base_report("redis-raw-stream", s);
  r["dedupe"] = s.redis_dedupe ? "SET NX PX GET per entry" : "off";
  r["claimed"] = claimed;
  r["redis_server"] = redis_server_cost(server0, server1, s.messages);
  r["seconds"] = secs;
  r["msgs_per_s"] = static_cast<double>(acked) / secs;
  r["p50_us"] = percentile(lat, 0.50);
  r["p99_us"] = percentile(lat, 0.99);
  r["latency_of"] = "one round trip: XACK of the previous batch + XREADGROUP COUNT 100";
  r["read"] = read;
  r["acked"] = acked;
  r["peak_rss_bytes"] = peak_rss_bytes();
  r["cpu"] = cpu_report(cpu0, cpu1, read, secs);
  bool claims_ok = !s.redis_dedupe || claimed == s.messages;
  r["check"] =
      (read == s.messages && static_cast<std::uint64_t>(acked) == s.messages && claims_ok)
          ? "ok"
          : "COUNT MISMATCH: read " + std::to_string(read) + ", acked " +
                std::to_string(acked) + ", claimed " + std::to_string(claimed);
  return r;
}

json run_redis_engine_stream(const redis_run_settings& s) {
  const std::string stream = "bench:" + s.name;
  fill_stream(s.port, stream, s.messages);

  redis_streams_settings ts;
  ts.redis.port = s.port;
  ts.stream = stream;
  ts.group = "g";
  ts.block = std::chrono::milliseconds{100};
  auto transport = std::make_shared<redis_streams_transport>(ts);

  engine_parts parts;
  parts.transport = transport;
  engine_config cfg;
  cfg.engine.max_in_flight = s.max_in_flight;
  if (s.redis_dedupe) {
    redis_settings rs;
    rs.port = s.port;
    rs.key_prefix = "bench:" + s.name + ":";
    auto idem = std::make_shared<redis_idempotency_store>(rs, cfg.dedupe.result_ttl);
    auto claims = std::make_shared<redis_claim_store>(rs, transport->source_id());
    auto attempts =
        std::make_shared<redis_attempt_log>(rs, transport->source_id(), attempt_history_ttl);
    for (auto* c : {&idem->connection(), &claims->connection(), &attempts->connection()}) {
      if (auto r = c->connect(); !r) {
        throw std::runtime_error("cannot connect a store to Redis: " + r.what);
      }
    }
    parts.idempotency = std::move(idem);
    parts.claims = std::move(claims);
    parts.attempts = std::move(attempts);
    cfg.dedupe.enabled = true;
    cfg.dedupe.store = "redis";
    cfg.sweeper.enabled = true;
    cfg.sweeper.store = "redis";
  } else {
    parts.idempotency = std::make_shared<memory_idempotency_store>();
    parts.claims = std::make_shared<memory_claim_store>();
    cfg.dedupe.enabled = false;
  }
  parts.handlers.set_fallback(make_noop_handler());
  const auto workers = cfg.engine.workers;
  const auto batch_size = cfg.engine.batch_size;
  engine e{cfg, std::move(parts)};

  // What redis-server spends from here on is this run's (not the pre-fill).
  auto server0 = snapshot_redis_server(s.port);
  auto cpu0 = cpu_time::now();
  auto t0 = steady::now();
  e.start();
  std::string check = "ok";
  // The stream is endless: the run ends when every entry is acked.
  while (e.metrics().acked < s.messages) {
    if (steady::now() - t0 > s.timeout) {
      check = "TIMEOUT after " + std::to_string(s.timeout.count()) + " s: " +
              std::to_string(e.metrics().acked) + " acked";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  auto t1 = steady::now();
  auto cpu1 = cpu_time::now();
  auto server1 = snapshot_redis_server(s.port);
  auto exit = e.stop();
  auto m = e.metrics();
  auto st = transport->stats();
  double secs = std::chrono::duration<double>(t1 - t0).count();
  if (check == "ok" && st.acked != s.messages) {
    check = "TRANSPORT ACKED " + std::to_string(st.acked) + " != " + std::to_string(s.messages);
  } else if (check == "ok" && m.dead_lettered != 0) {
    check = "UNEXPECTED DEAD LETTERS: " + std::to_string(m.dead_lettered);
  } else if (check == "ok" && !exit.drained) {
    check = "DRAIN INCOMPLETE";
  }
  auto r = base_report("redis-engine-stream", s);
  r["max_in_flight"] = s.max_in_flight;
  r["workers"] = workers;
  r["batch_size"] = batch_size;
  r["seconds"] = secs;
  r["msgs_per_s"] = static_cast<double>(m.acked) / secs;
  r["p50_us"] = m.p50_us;
  r["p99_us"] = m.p99_us;
  r["latency_of"] = "engine receive-to-settle per message";
  r["peak_rss_bytes"] = peak_rss_bytes();
  r["cpu"] = cpu_report(cpu0, cpu1, m.acked, secs);
  r["dedupe"] = s.redis_dedupe ? "redis (dedupe + sweeper + attempt log)" : "off";
  r["redis_server"] = redis_server_cost(server0, server1, s.messages);
  r["counts"] = {{"polled", m.polled},          {"acked", m.acked},
                 {"retried", m.retried},        {"store_errors", m.store_errors},
                 {"transport_read", st.read},   {"transport_acked", st.acked},
                 {"transport_nacked", st.nacked}};
  r["check"] = check;
  return r;
}

namespace {

json run_in_child(const std::string& kind, std::vector<std::string> args,
                  std::chrono::seconds timeout) {
  args.insert(args.begin(), {"/proc/self/exe", kind});
  auto r = run_child(args, timeout);
  auto line = last_json_line(r.out);
  if (!line.empty()) {
    try {
      return json::parse(line);
    } catch (const std::exception& e) {
      return {{"kind", kind}, {"check", std::string{"FAILED: bad report: "} + e.what()}};
    }
  }
  return {{"kind", kind}, {"check", "FAILED: child " + r.how()}};
}

// Runs redis-benchmark and returns {"msgs_per_s", "command", "output", "check"}.
json run_redis_benchmark(int port, std::uint64_t n, std::uint64_t depth,
                         std::chrono::seconds timeout) {
  std::vector<std::string> argv{"redis-benchmark", "-h",  "127.0.0.1",        "-p",
                                std::to_string(port), "-P", std::to_string(depth), "-c",
                                "1",             "-n",  std::to_string(n), "-r",
                                "100000000",     "-q",  "SET",             "key:__rand_int__",
                                "v",             "NX",  "PX",              "60000"};
  std::string cmd;
  for (auto& a : argv) {
    cmd += (cmd.empty() ? "" : " ") + a;
  }
  auto r = run_child(argv, timeout);
  json out = {{"kind", "redis-benchmark"}, {"command", cmd}, {"messages", n}};
  auto pos = r.out.rfind("requests per second");
  double rate = 0;
  if (pos != std::string::npos) {
    auto end = r.out.find_last_not_of(' ', pos - 1);
    auto begin = r.out.find_last_not_of("0123456789.", end);
    rate = std::atof(r.out.substr(begin + 1, end - begin).c_str());
    auto eol = r.out.find_first_of("\r\n", pos);
    auto bol = r.out.find_last_of("\r\n", pos);
    out["output"] = r.out.substr(bol == std::string::npos ? 0 : bol + 1,
                                 eol == std::string::npos ? std::string::npos : eol - bol - 1);
  }
  out["msgs_per_s"] = rate;
  out["check"] = (r.ok() && rate > 0) ? std::string{"ok"} : "FAILED: redis-benchmark " + r.how();
  return out;
}

void flushall(int port) {
  raw_conn rc{port};
  rc.append({"FLUSHALL"});
  rc.reply();
}

json ratio(const json& a, const json& b) {
  if (a.value("check", "") != "ok" || b.value("check", "") != "ok" ||
      b["msgs_per_s"].get<double>() <= 0) {
    return nullptr;
  }
  return a["msgs_per_s"].get<double>() / b["msgs_per_s"].get<double>();
}

std::string num(const json& r, const char* key, int decimals = 0) {
  if (!r.contains(key) || !r[key].is_number()) {
    return "-";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, r[key].get<double>());
  // thousands separators on the integer part
  std::string s = buf;
  auto dot = s.find('.');
  auto int_end = dot == std::string::npos ? s.size() : dot;
  for (auto i = static_cast<long>(int_end) - 3; i > 0; i -= 3) {
    s.insert(static_cast<std::size_t>(i), ",");
  }
  return s;
}

std::string mib(const json& r) {
  if (!r.contains("peak_rss_bytes")) {
    return "-";
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", r["peak_rss_bytes"].get<double>() / (1024.0 * 1024.0));
  return buf;
}

void row(std::ostream& os, const std::string& name, const json& r) {
  char buf[512];
  std::string cpu = "-";
  std::string csw = "-";
  if (r.contains("cpu")) {
    cpu = num(r["cpu"], "us_per_msg", 2);
    csw = num(r["cpu"], "voluntary_switches_per_msg", 3);
  }
  std::snprintf(buf, sizeof buf, "%-52s %12s %10s %10s %8s %7s %8s  %s\n", name.c_str(),
                num(r, "msgs_per_s").c_str(), num(r, "p50_us").c_str(), num(r, "p99_us").c_str(),
                mib(r).c_str(), cpu.c_str(), csw.c_str(), r.value("check", std::string{"?"}).c_str());
  os << buf;
}

void ratio_line(std::ostream& os, const char* what, const json& x, double target) {
  char buf[256];
  if (x.is_null()) {
    std::snprintf(buf, sizeof buf, "  %-50s %12s\n", what, "-");
  } else if (target > 0) {
    std::snprintf(buf, sizeof buf, "  %-50s %11.2fx  target >= %.1fx  %s\n", what, x.get<double>(),
                  target, x.get<double>() >= target ? "PASS" : "MISS");
  } else {
    std::snprintf(buf, sizeof buf, "  %-50s %11.2fx\n", what, x.get<double>());
  }
  os << buf;
}

} // namespace

int run_redis_all(options& o) {
  const auto claims = o.u64("claims", 500000);
  const auto depth = o.u64("depth", 256);
  const auto messages = o.u64("messages", 200000);
  const auto mif = o.u64("max-in-flight", 1024);
  const auto engine_messages = o.u64("engine-messages", 200000);
  const auto timeout = std::chrono::seconds{o.u64("timeout-s", 180)};
  const auto repeat = std::max<std::uint64_t>(1, o.u64("repeat", 3));
  // (e) the (d) engine at a small and a large stream: the rate must not fall
  // as the keyspace grows. 0 skips the pair.
  const auto keyspace_small = o.u64("keyspace-small", 50000);
  const auto keyspace_large = o.u64("keyspace-large", 2000000);
  const auto out_dir = o.str("out", std::string{MAILROOM_BENCH_DIR} + "/out");
  o.check_unknown();

  mailroom::testing::redis_server server;
  const int port = server.port();
  const auto p = std::to_string(port);
  const auto child_timeout = std::to_string(std::max<long>(1, timeout.count() * 3 / 4));
  {
    std::ifstream in{"/proc/loadavg"};
    std::string load;
    std::getline(in, load);
    std::cerr << "bench: load average " << load << "\n";
  }
  std::cerr << "bench: redis-server on 127.0.0.1:" << port << " (no persistence)\n";

  json results;
  results["machine"] = machine_info();
  results["settings"] = {{"claims", claims},
                         {"pipeline_depth", depth},
                         {"stream_messages", messages},
                         {"stream_engine_max_in_flight", mif},
                         {"engine_messages", engine_messages},
                         {"engine_max_in_flight", 1024},
                         {"claim_ttl_ms", 60000},
                         {"raw_count", 100},
                         {"repeat", repeat}};

  // Prints the latest attempt of `r` (a best-of record).
  auto done = [](const char* what, const json& r) {
    const json& last = r["attempts"].back();
    std::fprintf(stderr, "bench: %-34s %12.0f /s  %s\n", what,
                 last.is_number() ? last.get<double>() : 0.0,
                 last.is_number() ? "ok" : last.get<std::string>().c_str());
  };

  // Keeps the faster of `best` and `r` (a passed check beats a failed one)
  // and lists every attempt's rate in best["attempts"].
  auto keep_best = [](json& best, json r) {
    bool ok = r.value("check", "") == "ok";
    json attempts = best.is_null() ? json::array() : best["attempts"];
    attempts.push_back(ok ? r["msgs_per_s"] : r["check"]);
    bool best_ok = !best.is_null() && best.value("check", "") == "ok";
    if (best.is_null() || (ok && (!best_ok || r["msgs_per_s"].get<double>() >
                                                  best["msgs_per_s"].get<double>()))) {
      best = std::move(r);
    }
    best["attempts"] = attempts;
  };

  // Each pair alternates `repeat` times (the machine is shared: a change in
  // its load hits both sides alike) and keeps the fastest of each side.
  json a;
  json b;
  json c;
  json d;
  for (std::uint64_t i = 0; i < repeat; ++i) {
    // (a) dedupe claims through the store vs redis-benchmark SET NX PX.
    keep_best(a["store"],
              run_in_child("redis-claims",
                           {"--port", p, "--messages", std::to_string(claims), "--batch",
                            std::to_string(depth), "--name", "claims" + std::to_string(i),
                            "--timeout-s", child_timeout},
                           timeout));
    done("(a) store claim()", a["store"]);
    flushall(port);
    keep_best(a["redis_benchmark"], run_redis_benchmark(port, claims, depth, timeout));
    done("(a) redis-benchmark SET NX PX", a["redis_benchmark"]);
    flushall(port);
  }
  a["ratio"] = ratio(a["store"], a["redis_benchmark"]);
  for (std::uint64_t i = 0; i < repeat; ++i) {
    // (b) the engine over Redis Streams vs a raw XREADGROUP + XACK loop.
    keep_best(b["raw"], run_in_child("redis-raw-stream",
                                     {"--port", p, "--messages", std::to_string(messages),
                                      "--name", "raw" + std::to_string(i), "--timeout-s",
                                      child_timeout},
                                     timeout));
    done("(b) raw XREADGROUP + XACK", b["raw"]);
    flushall(port);
    keep_best(b["engine"],
              run_in_child("redis-engine-stream",
                           {"--port", p, "--messages", std::to_string(messages), "--name",
                            "engine" + std::to_string(i), "--max-in-flight",
                            std::to_string(mif), "--timeout-s", child_timeout},
                           timeout));
    done("(b) engine on Redis Streams", b["engine"]);
    flushall(port);
    // (d) the same engine with dedupe, the sweeper and the attempt log on
    // Redis, interleaved with (b) so both see the same machine.
    keep_best(d["on"],
              run_in_child("redis-engine-stream",
                           {"--port", p, "--messages", std::to_string(messages), "--name",
                            "dedupe" + std::to_string(i), "--max-in-flight",
                            std::to_string(mif), "--timeout-s", child_timeout,
                            "--redis-dedupe"},
                           timeout));
    done("(d) engine, Redis dedupe + sweeper", d["on"]);
    flushall(port);
    keep_best(d["raw"], run_in_child("redis-raw-stream",
                                     {"--port", p, "--messages", std::to_string(messages),
                                      "--name", "rawdedupe" + std::to_string(i),
                                      "--timeout-s", child_timeout, "--redis-dedupe"},
                                     timeout));
    done("(d) raw + SET NX PX GET", d["raw"]);
    flushall(port);
  }
  json e;
  for (std::uint64_t i = 0; keyspace_small > 0 && keyspace_large > 0 && i < repeat; ++i) {
    for (auto [side, n] :
         {std::pair{"small", keyspace_small}, std::pair{"large", keyspace_large}}) {
      keep_best(e[side],
                run_in_child("redis-engine-stream",
                             {"--port", p, "--messages", std::to_string(n), "--name",
                              std::string{"keys"} + side + std::to_string(i),
                              "--max-in-flight", std::to_string(mif), "--timeout-s",
                              child_timeout, "--redis-dedupe"},
                             timeout));
      done(std::string{side} == "small" ? "(e) engine, dedupe on, small stream"
                                        : "(e) engine, dedupe on, large stream",
           e[side]);
      flushall(port);
    }
  }
  e["ratio"] = e.contains("large") ? ratio(e["large"], e["small"]) : json(nullptr);
  b["ratio"] = ratio(b["engine"], b["raw"]);
  d["ratio_on_off"] = ratio(d["on"], b["engine"]);
  d["ratio_on_raw"] = ratio(d["on"], d["raw"]);
  // (c) the in-memory engine with the Redis dedupe store vs the memory one.
  std::vector<std::string> eargs{"--messages", std::to_string(engine_messages),
                                 "--max-in-flight", "1024", "--timeout-s", child_timeout};
  auto with_redis = eargs;
  with_redis.insert(with_redis.end(), {"--redis-port", p});
  for (std::uint64_t i = 0; i < repeat; ++i) {
    keep_best(c["redis_store"], run_in_child("engine", with_redis, timeout));
    done("(c) engine, Redis dedupe store", c["redis_store"]);
    flushall(port);
    keep_best(c["memory_store"], run_in_child("engine", eargs, timeout));
    done("(c) engine, memory dedupe store", c["memory_store"]);
  }
  c["ratio"] = ratio(c["redis_store"], c["memory_store"]);
  for (auto* k : {"redis_store", "memory_store"}) {
    c[k].erase("rss"); // the RSS profile belongs to the flatness runs
  }

  {
    std::ifstream in{"/proc/loadavg"};
    std::string load;
    std::getline(in, load);
    results["machine"]["loadavg_at_end"] = load;
  }
  results["a_dedupe_claims"] = a;
  results["b_streams"] = b;
  results["c_dedupe_store"] = c;
  results["d_streams_dedupe"] = d;
  results["e_keyspace"] = e;
  bool all_ok = true;
  for (auto* r : {&a["store"], &a["redis_benchmark"], &b["raw"], &b["engine"],
                  &c["redis_store"], &c["memory_store"], &d["on"], &d["raw"]}) {
    all_ok = all_ok && r->value("check", "") == "ok";
  }
  results["targets"] = {
      {"a_ratio_ge_0_7",
       a["ratio"].is_null() ? json(nullptr) : json(a["ratio"].get<double>() >= 0.7)},
      {"b_ratio_ge_0_7",
       b["ratio"].is_null() ? json(nullptr) : json(b["ratio"].get<double>() >= 0.7)},
      {"d_ratio_ge_0_5", d["ratio_on_off"].is_null()
                             ? json(nullptr)
                             : json(d["ratio_on_off"].get<double>() >= 0.5)},
      {"d_raw_ratio_ge_0_7", d["ratio_on_raw"].is_null()
                                 ? json(nullptr)
                                 : json(d["ratio_on_raw"].get<double>() >= 0.7)},
      {"d_redis_cpu_le_6_us",
       d["on"].contains("redis_server")
           ? json(d["on"]["redis_server"]["cpu_us_per_msg"].get<double>() <= 6.0)
           : json(nullptr)},
      {"e_ratio_ge_0_9",
       e["ratio"].is_null() ? json(nullptr) : json(e["ratio"].get<double>() >= 0.9)}};

  ::mkdir(out_dir.c_str(), 0755);
  std::ofstream(out_dir + "/redis.json") << results.dump(2) << "\n";

  auto& os = std::cout;
  char head[256];
  std::snprintf(head, sizeof head, "%-52s %12s %10s %10s %8s %7s %8s  %s\n", "measurement",
                "per s", "p50 µs", "p99 µs", "RSS MiB", "CPU µs", "csw/msg", "check");
  os << head;
  os << "(a) dedupe claims, " << num(json{{"n", claims}}, "n") << " fresh keys, depth " << depth
     << "\n";
  row(os, "  redis_idempotency_store::claim, " + std::to_string(depth) + " keys/call", a["store"]);
  row(os, "  redis-benchmark -P " + std::to_string(depth) + " SET NX PX (c=1)",
      a["redis_benchmark"]);
  ratio_line(os, "store / redis-benchmark", a["ratio"], 0.7);
  os << "(b) Redis Streams, " << num(json{{"n", messages}}, "n") << " pre-filled entries\n";
  row(os, "  engine, redis_streams_transport, mif=" + std::to_string(mif), b["engine"]);
  row(os, "  raw hiredis XREADGROUP COUNT 100 + pipelined XACK", b["raw"]);
  ratio_line(os, "engine / raw", b["ratio"], 0.7);
  os << "(c) engine on memory_transport, " << num(json{{"n", engine_messages}}, "n")
     << " messages, dedupe on, mif=1024\n";
  row(os, "  redis_idempotency_store", c["redis_store"]);
  row(os, "  memory_idempotency_store", c["memory_store"]);
  ratio_line(os, "redis store / memory store", c["ratio"], 0);
  os << "(d) Redis Streams as (b), dedupe + sweeper + attempt log on Redis vs all off\n";
  row(os, "  engine, dedupe + sweeper on Redis", d["on"]);
  row(os, "  engine, dedupe + sweeper off (b)", b["engine"]);
  row(os, "  raw XREADGROUP + XACK + SET NX PX GET per entry", d["raw"]);
  ratio_line(os, "on / off", d["ratio_on_off"], 0.5);
  ratio_line(os, "on / raw with SET NX PX GET", d["ratio_on_raw"], 0.7);
  if (d["on"].contains("redis_server")) {
    char line[160];
    double cpu = d["on"]["redis_server"]["cpu_us_per_msg"].get<double>();
    std::snprintf(line, sizeof line, "  %-50s %9.1f µs  target <= 6 µs  %s\n",
                  "redis-server CPU per message, on", cpu, cpu <= 6.0 ? "PASS" : "MISS");
    os << line;
  }
  for (auto* side : {"on", "off", "raw"}) {
    const json& r = std::string{side} == "on"    ? d["on"]
                    : std::string{side} == "off" ? b["engine"]
                                                 : d["raw"];
    if (!r.contains("redis_server")) {
      continue;
    }
    const auto& cost = r["redis_server"];
    char line[256];
    std::snprintf(line, sizeof line,
                  "  redis-server, %-3s: %.1f CPU µs/msg (process), %.1f µs/msg in commands:",
                  side, cost["cpu_us_per_msg"].get<double>(),
                  cost["command_us_per_msg"].get<double>());
    os << line;
    for (const auto& c2 : cost["commands"]) {
      if (c2["us_per_msg"].get<double>() < 0.005) {
        continue;
      }
      std::snprintf(line, sizeof line, " %s %.2f (%.3f calls)",
                    c2["command"].get<std::string>().c_str(), c2["us_per_msg"].get<double>(),
                    c2["calls_per_msg"].get<double>());
      os << line;
    }
    os << "\n";
  }
  if (e.contains("small")) {
    os << "(e) the (d) engine with dedupe on at " << num(json{{"n", keyspace_small}}, "n")
       << " and " << num(json{{"n", keyspace_large}}, "n") << " stream entries (keys)\n";
    row(os, "  " + num(json{{"n", keyspace_small}}, "n") + " entries", e["small"]);
    row(os, "  " + num(json{{"n", keyspace_large}}, "n") + " entries", e["large"]);
    ratio_line(os, "large / small", e["ratio"], 0.9);
  }
  os << "\nbest of " << repeat << " alternating runs per row (attempts in redis.json).\n";
  os << "p50/p99: (a) per claim() call / per redis-benchmark n/a; (b) engine per message\n"
        "receive-to-settle, raw per batch round trip; (c) engine per message.\n"
        "CPU µs and csw/msg: CPU time and voluntary context switches per message of the\n"
        "measuring process only (redis-server's own CPU is not in them).\n"
        "(d) redis-server lines: its process CPU per message (INFO cpu), then INFO\n"
        "commandstats per message: µs and calls per message by command; commands run by a\n"
        "script (EVALSHA) or a MULTI/EXEC are counted in it and again on their own line.\n";
  os << "results: " << out_dir << "/redis.json\n";
  if (!all_ok) {
    os << "\nbench: SOME RUNS FAILED THEIR CHECK (see the check column)\n";
  }
  return all_ok ? 0 : 1;
}

} // namespace mailroom::bench
