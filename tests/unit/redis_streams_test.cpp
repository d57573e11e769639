#define BOOST_TEST_MODULE redis_streams
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <climits>
#include <unistd.h>

#include "clients/redis/redis_connection.hpp"
#include "mailroom/engine.hpp"
#include "stores/memory/memory_idempotency_store.hpp"
#include "tests/support/engine_harness.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/redis_admin.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/reply_dropping_proxy.hpp"
#include "tests/support/transport_contract.hpp"
#include "stores/redis/redis_attempt_log.hpp"
#include "transports/redis/redis_streams_transport.hpp"

using namespace std::chrono_literals;
using mailroom::dead_letter_record;
using mailroom::engine;
using mailroom::engine_config;
using mailroom::engine_parts;
using mailroom::envelope;
using mailroom::envelope_batch;
using mailroom::failure_class;
using mailroom::handler_context;
using mailroom::handler_registry;
using mailroom::outcome;
using mailroom::redis_command;
using mailroom::redis_connection;
using mailroom::redis_settings;
using mailroom::redis_streams_settings;
using mailroom::redis_streams_transport;
using mailroom::testing::eventually;
using mailroom::testing::integer_of;
using mailroom::testing::process_runner;
using mailroom::testing::redis_server;
using mailroom::testing::reply_dropping_proxy;
using mailroom::testing::run;

BOOST_TEST_DONT_PRINT_LOG_VALUE(failure_class)

namespace {

using fields = std::vector<std::pair<std::string, std::string>>;

redis_settings redis_for(int port) {
  redis_settings s;
  s.port = port;
  s.connect_timeout = 500ms;
  s.command_timeout = 1000ms;
  s.reconnect.base = 20ms;
  s.reconnect.cap = 200ms;
  return s;
}

// Blocking reads are short so an engine stops quickly; recovery is off
// unless a test lowers min_idle.
redis_streams_settings streams_for(int port, const std::string& stream = "orders",
                                   const std::string& consumer = "c1") {
  redis_streams_settings s;
  s.redis = redis_for(port);
  s.stream = stream;
  s.group = "g";
  s.consumer = consumer;
  s.block = 50ms;
  s.min_idle = 10000ms;
  return s;
}

// The scaled-down settings of tests/support/engine_harness.hpp.
engine_config fast_config() {
  return mailroom::testing::scaled_down_config();
}

// The attempt log the command gives a Redis stream: on its server.
std::shared_ptr<mailroom::redis_attempt_log>
attempt_log_for(const mailroom::transport& t, const redis_settings& redis) {
  return std::make_shared<mailroom::redis_attempt_log>(redis, t.source_id(),
                                                       mailroom::attempt_history_ttl);
}

std::unique_ptr<engine>
start_engine(std::shared_ptr<mailroom::transport> t, handler_registry handlers,
             std::shared_ptr<mailroom::idempotency_store> idem = {},
             engine_config cfg = fast_config()) {
  engine_parts parts;
  if (auto* streams = dynamic_cast<redis_streams_transport*>(t.get())) {
    parts.attempts = attempt_log_for(*streams, streams->settings().redis);
  }
  parts.transport = std::move(t);
  parts.idempotency = std::move(idem);
  parts.handlers = std::move(handlers);
  auto e = std::make_unique<engine>(std::move(cfg), std::move(parts));
  e->start();
  return e;
}

std::string text(const redisReply* r) {
  return std::string{mailroom::reply_text(r)};
}

std::string xadd(redis_connection& admin, const std::string& stream, const fields& fs) {
  redis_command cmd{"XADD", stream, "*"};
  for (const auto& [name, value] : fs) {
    cmd.push_back(name);
    cmd.push_back(value);
  }
  return text(run(admin, cmd).get());
}

// Adds `n` entries "payload" = "p-i", "key" = "k-i" in pipelined chunks;
// returns their ids in order.
std::vector<std::string> xadd_many(redis_connection& admin, const std::string& stream,
                                   int n) {
  std::vector<std::string> ids;
  for (int first = 0; first < n; first += 500) {
    std::vector<redis_command> cmds;
    for (int i = first; i < std::min(n, first + 500); ++i) {
      cmds.push_back({"XADD", stream, "*", "payload", "p-" + std::to_string(i), "key",
                      "k-" + std::to_string(i)});
    }
    auto r = admin.pipeline(cmds);
    BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.status.what);
    for (auto& reply : r.replies) {
      ids.push_back(text(reply.get()));
    }
  }
  return ids;
}

// Number of entries in the group's pending entries list.
long long pending(redis_connection& admin, const std::string& stream,
                  const std::string& group = "g") {
  auto reply = run(admin, {"XPENDING", stream, group});
  BOOST_REQUIRE(reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1);
  return reply->element[0]->integer;
}

// Delivery count of one pending entry, 0 when it is not pending.
long long deliveries(redis_connection& admin, const std::string& stream,
                     const std::string& id) {
  auto reply = run(admin, {"XPENDING", stream, "g", id, id, "1"});
  if (reply->elements == 0) {
    return 0;
  }
  return reply->element[0]->element[3]->integer;
}

// Owner of one pending entry, empty when it is not pending.
std::string owner(redis_connection& admin, const std::string& stream,
                  const std::string& id) {
  auto reply = run(admin, {"XPENDING", stream, "g", id, id, "1"});
  if (reply->elements == 0) {
    return {};
  }
  return text(reply->element[0]->element[1]);
}

// The last id the group has delivered.
std::string last_delivered(redis_connection& admin, const std::string& stream) {
  auto reply = run(admin, {"XINFO", "GROUPS", stream});
  BOOST_REQUIRE(reply->elements >= 1);
  const redisReply* group = reply->element[0];
  for (std::size_t i = 0; i + 1 < group->elements; i += 2) {
    if (text(group->element[i]) == "last-delivered-id") {
      return text(group->element[i + 1]);
    }
  }
  return {};
}

using entry_fields = std::map<std::string, std::string>;

// Number of attempt histories kept on the server (any source).
long long attempt_histories(redis_connection& admin) {
  return static_cast<long long>(run(admin, {"KEYS", "mailroom:attempts:*"})->elements);
}

// Every entry of `stream`, oldest first, as (id, fields).
std::vector<std::pair<std::string, entry_fields>> xrange(redis_connection& admin,
                                                         const std::string& stream) {
  auto reply = run(admin, {"XRANGE", stream, "-", "+"});
  std::vector<std::pair<std::string, entry_fields>> out;
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* e = reply->element[i];
    entry_fields f;
    for (std::size_t j = 0; j + 1 < e->element[1]->elements; j += 2) {
      f[text(e->element[1]->element[j])] = text(e->element[1]->element[j + 1]);
    }
    out.emplace_back(text(e->element[0]), std::move(f));
  }
  return out;
}

// Polls `t` until something arrives or `limit` passes.
envelope_batch poll_some(redis_streams_transport& t, std::size_t max = 100,
                         std::chrono::milliseconds limit = 3000ms) {
  envelope_batch out;
  auto end = std::chrono::steady_clock::now() + limit;
  while (out.empty() && std::chrono::steady_clock::now() < end) {
    auto r = t.poll(max, 20ms, out);
    BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  }
  return out;
}

void ack_all(redis_streams_transport& t, const envelope_batch& batch) {
  std::vector<const envelope*> ptrs;
  for (const auto& m : batch) {
    ptrs.push_back(&m);
  }
  auto r = t.ack(ptrs);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
}

std::string header(const envelope& m, const std::string& name) {
  for (const auto& [n, v] : m.headers) {
    if (n == name) {
      return v;
    }
  }
  return "<none>";
}

// Every byte value, repeated to 1 MiB.
std::string blob_1mib() {
  std::string out(1 << 20, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(i * 7 % 256);
  }
  return out;
}

// Records what a handler saw, safely from many lanes.
struct seen_log {
  std::mutex mutex;
  std::vector<envelope> messages;
  std::vector<std::uint32_t> attempts;

  void add(const envelope& m, const handler_context& ctx) {
    std::lock_guard<std::mutex> lock{mutex};
    messages.push_back(m);
    attempts.push_back(ctx.attempt);
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock{mutex};
    return messages.size();
  }
};

std::string self_exe() {
  char buf[PATH_MAX] = {};
  auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string{};
}

} // namespace

// A fresh server, an admin connection and a transport on stream "orders"
// for the tests that run an engine over it.
struct engine_on_a_stream {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  std::shared_ptr<redis_streams_transport> t =
      std::make_shared<redis_streams_transport>(streams_for(server.port()));
};

// ---- the transport on its own ------------------------------------------------

BOOST_AUTO_TEST_CASE(the_group_is_created_if_missing_and_kept_if_present) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  redis_streams_transport t{streams_for(server.port(), "fresh")};
  BOOST_TEST(integer_of(admin, {"EXISTS", "fresh"}) == 0);
  auto r = t.ensure_group();
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  BOOST_TEST(integer_of(admin, {"EXISTS", "fresh"}) == 1); // MKSTREAM
  BOOST_TEST(last_delivered(admin, "fresh") == "0-0");
  BOOST_TEST(static_cast<bool>(t.ensure_group())); // BUSYGROUP is fine

  // An existing group keeps its position; a poll alone creates a missing one.
  xadd(admin, "kept", {{"payload", "old"}});
  run(admin, {"XGROUP", "CREATE", "kept", "g", "$"});
  auto later = xadd(admin, "kept", {{"payload", "new"}});
  redis_streams_transport k{streams_for(server.port(), "kept")};
  auto got = poll_some(k);
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].id == later);
  redis_streams_transport p{streams_for(server.port(), "by-poll")};
  envelope_batch none;
  BOOST_TEST(static_cast<bool>(p.poll(10, 0ms, none)));
  BOOST_TEST(none.empty());
  BOOST_TEST(last_delivered(admin, "by-poll") == "0-0");
}

BOOST_AUTO_TEST_CASE(poll_maps_entry_fields_and_ack_clears_the_pending_list) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto s = streams_for(server.port());
  s.ordering_key_field = "customer";
  s.topic = "order-events";
  redis_streams_transport t{s};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  auto with_key = xadd(admin, "orders",
                       {{"key", "order-7"},
                        {"payload", "{\"n\":7}"},
                        {"customer", "c-9"},
                        {"trace", "t-1"}});
  auto without_key = xadd(admin, "orders", {{"payload", "plain"}, {"key", ""}});
  auto got = poll_some(t);
  BOOST_REQUIRE(got.size() == 2u);
  BOOST_TEST(got[0].id == with_key);
  BOOST_TEST(got[0].handle.handle == with_key);
  BOOST_TEST(got[0].key == "order-7");
  BOOST_TEST(got[0].payload == "{\"n\":7}");
  BOOST_TEST(got[0].topic == "order-events");
  BOOST_TEST(got[0].ordering_key == "c-9");
  BOOST_TEST(got[0].attempt == 1u);
  BOOST_TEST(header(got[0], "trace") == "t-1");
  BOOST_TEST(header(got[0], "key") == "order-7");
  BOOST_TEST(header(got[0], "payload") == "<none>"); // not copied into the headers
  BOOST_TEST(got[1].key == without_key);             // empty key field: the entry id
  BOOST_TEST(got[1].order_key() == without_key);
  BOOST_TEST(pending(admin, "orders") == 2);

  ack_all(t, got);
  BOOST_TEST(pending(admin, "orders") == 0);
  BOOST_TEST(t.stats().read == 2u);
  BOOST_TEST(t.stats().acked == 2u);
  // Acking again is harmless: the entries are no longer pending.
  ack_all(t, got);
  BOOST_TEST(t.stats().acked == 2u);
}

BOOST_AUTO_TEST_CASE(an_entry_without_the_payload_field_comes_back_as_poison) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  redis_streams_transport t{streams_for(server.port())};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  auto good = xadd(admin, "orders", {{"payload", "fine"}});
  auto bad = xadd(admin, "orders", {{"body", "wrong field"}, {"key", "k-bad"}});
  auto got = poll_some(t);
  BOOST_REQUIRE(got.size() == 2u);
  BOOST_TEST(got[0].id == good);
  BOOST_TEST(got[0].poison.empty());
  // The malformed entry is handed over for the engine to dead-letter, with
  // the reason and what it carried; nothing is written meanwhile.
  BOOST_TEST(got[1].id == bad);
  BOOST_TEST(got[1].poison == "entry has no \"payload\" field");
  BOOST_TEST(got[1].key == "k-bad");
  BOOST_TEST(header(got[1], "body") == "wrong field");
  BOOST_TEST(xrange(admin, "orders:dlq").empty());
  BOOST_TEST(deliveries(admin, "orders", bad) == 1);
  BOOST_TEST(t.stats().malformed == 1u);
  BOOST_TEST(t.stats().read == 2u);
  ack_all(t, got);
  BOOST_TEST(pending(admin, "orders") == 0);

  // With no payload field configured nothing is malformed: every field is a header.
  auto s = streams_for(server.port(), "raw");
  s.payload_field = "";
  redis_streams_transport headers_only{s};
  BOOST_REQUIRE(static_cast<bool>(headers_only.ensure_group()));
  xadd(admin, "raw", {{"body", "b"}, {"payload", "p"}});
  auto raw = poll_some(headers_only);
  BOOST_REQUIRE(raw.size() == 1u);
  BOOST_TEST(raw[0].payload.empty());
  BOOST_TEST(header(raw[0], "body") == "b");
  BOOST_TEST(header(raw[0], "payload") == "p");
  BOOST_TEST(headers_only.stats().malformed == 0u);
}

BOOST_AUTO_TEST_CASE(the_key_comes_from_the_configured_field) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto s = streams_for(server.port());
  s.key_field = "order_id";
  redis_streams_transport t{s};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  xadd(admin, "orders", {{"order_id", "o-1"}, {"key", "ignored"}, {"payload", "a"}});
  auto plain = xadd(admin, "orders", {{"key", "ignored"}, {"payload", "b"}});
  auto got = poll_some(t);
  BOOST_REQUIRE(got.size() == 2u);
  BOOST_TEST(got[0].key == "o-1");
  BOOST_TEST(got[1].key == plain);

  s.stream = "orders2";
  s.key_field = ""; // always the entry id
  redis_streams_transport ids{s};
  BOOST_REQUIRE(static_cast<bool>(ids.ensure_group()));
  auto id = xadd(admin, "orders2", {{"key", "k"}, {"payload", "c"}});
  got = poll_some(ids);
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].key == id);
}

BOOST_AUTO_TEST_CASE(nack_keeps_the_entry_pending_and_redelivers_it_when_due) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  redis_streams_transport t{streams_for(server.port())};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  auto id = xadd(admin, "orders", {{"payload", "x"}});
  auto got = poll_some(t);
  BOOST_REQUIRE(got.size() == 1u);

  BOOST_REQUIRE(static_cast<bool>(t.nack(got[0], 0ms)));
  BOOST_TEST(pending(admin, "orders") == 1);
  auto again = poll_some(t);
  BOOST_REQUIRE(again.size() == 1u);
  BOOST_TEST(again[0].id == id);
  BOOST_TEST(again[0].attempt == 2u); // the delivery count

  // A delay is honoured: nothing before it, the entry with attempt 3 after.
  auto start = std::chrono::steady_clock::now();
  BOOST_REQUIRE(static_cast<bool>(t.nack(again[0], 300ms)));
  envelope_batch early;
  BOOST_REQUIRE(static_cast<bool>(t.poll(10, 100ms, early)));
  BOOST_TEST(early.empty());
  auto third = poll_some(t);
  BOOST_TEST((std::chrono::steady_clock::now() - start >= 290ms));
  BOOST_REQUIRE(third.size() == 1u);
  BOOST_TEST(third[0].attempt == 3u);
  BOOST_TEST(deliveries(admin, "orders", id) == 3);
  BOOST_TEST(t.stats().redelivered == 2u);
  BOOST_TEST(t.stats().nacked == 2u);

  ack_all(t, third);
  BOOST_TEST(pending(admin, "orders") == 0);
  BOOST_TEST(integer_of(admin, {"ZCARD", "orders:retry"}) == 0);
}

BOOST_AUTO_TEST_CASE(a_retry_handed_back_by_one_consumer_is_taken_by_another) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto id = std::string{};
  {
    redis_streams_transport leaving{streams_for(server.port(), "orders", "leaving")};
    BOOST_REQUIRE(static_cast<bool>(leaving.ensure_group()));
    id = xadd(admin, "orders", {{"payload", "x"}});
    auto got = poll_some(leaving);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_REQUIRE(static_cast<bool>(leaving.nack(got[0], 0ms))); // a drain hands it back
    BOOST_TEST(static_cast<bool>(leaving.close()));
  }
  redis_streams_transport staying{streams_for(server.port(), "orders", "staying")};
  auto got = poll_some(staying);
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].id == id);
  BOOST_TEST(got[0].attempt == 2u);
  BOOST_TEST(owner(admin, "orders", id) == "staying");
  ack_all(staying, got);
  BOOST_TEST(pending(admin, "orders") == 0);
}

BOOST_AUTO_TEST_CASE(a_busy_poll_reads_only_new_entries_between_retry_checks) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto s = streams_for(server.port(), "orders", "busy");
  s.retry_check_interval = 2000ms;
  redis_streams_transport busy{s};
  redis_streams_transport other{streams_for(server.port(), "orders", "other")};
  BOOST_REQUIRE(static_cast<bool>(busy.ensure_group()));
  xadd_many(admin, "orders", 50);

  // The first poll runs the script (recovery and retries are due at start);
  // the next ones are one XREADGROUP each.
  auto first = poll_some(busy, 10);
  BOOST_REQUIRE(first.size() == 10u);
  auto scripts = server.calls_of("evalsha");
  auto reads = server.calls_of("xreadgroup");
  envelope_batch more;
  for (int i = 0; i < 3; ++i) {
    BOOST_REQUIRE(static_cast<bool>(busy.poll(10, 20ms, more)));
  }
  BOOST_TEST(more.size() == 30u);
  BOOST_TEST(server.calls_of("evalsha") == scripts);
  BOOST_TEST(server.calls_of("xreadgroup") - reads == 3);

  // A retry this transport scheduled is looked for as soon as it is due.
  BOOST_REQUIRE(static_cast<bool>(busy.nack(first[0], 0ms))); // a script too
  scripts = server.calls_of("evalsha");
  envelope_batch next;
  BOOST_REQUIRE(static_cast<bool>(busy.poll(10, 20ms, next)));
  BOOST_REQUIRE(!next.empty());
  BOOST_TEST(next[0].id == first[0].id);
  BOOST_TEST(next[0].attempt == 2u);
  BOOST_TEST(server.calls_of("evalsha") - scripts == 1);

  // One another consumer scheduled waits for the next check: not seen by
  // polls within the interval, seen after it.
  envelope_batch theirs = poll_some(other, 1);
  BOOST_REQUIRE(theirs.size() == 1u);
  BOOST_REQUIRE(static_cast<bool>(other.nack(theirs[0], 0ms)));
  auto nacked = std::chrono::steady_clock::now();
  envelope_batch seen;
  while (std::chrono::steady_clock::now() - nacked < 500ms) {
    BOOST_REQUIRE(static_cast<bool>(busy.poll(100, 20ms, seen)));
  }
  auto has_theirs = [&](const envelope_batch& b) {
    return std::any_of(b.begin(), b.end(),
                       [&](const envelope& m) { return m.id == theirs[0].id; });
  };
  BOOST_TEST(!has_theirs(seen));
  while (!has_theirs(seen) && std::chrono::steady_clock::now() - nacked < 5s) {
    BOOST_REQUIRE(static_cast<bool>(busy.poll(100, 20ms, seen)));
  }
  BOOST_TEST(has_theirs(seen));
  BOOST_TEST(owner(admin, "orders", theirs[0].id) == "busy");
}

BOOST_AUTO_TEST_CASE(a_scheduled_retry_is_not_taken_over_before_it_is_due) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto s = streams_for(server.port());
  s.min_idle = 50ms;
  s.recovery_interval = 10ms;
  redis_streams_transport t{s};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  auto id = xadd(admin, "orders", {{"payload", "x"}});
  auto got = poll_some(t);
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_REQUIRE(static_cast<bool>(t.nack(got[0], 600ms)));
  // Recovery passes run meanwhile and find the entry idle: they leave it.
  auto end = std::chrono::steady_clock::now() + 400ms;
  while (std::chrono::steady_clock::now() < end) {
    envelope_batch none;
    BOOST_REQUIRE(static_cast<bool>(t.poll(10, 20ms, none)));
    BOOST_TEST(none.empty());
  }
  BOOST_TEST(deliveries(admin, "orders", id) == 1);
  auto later = poll_some(t);
  BOOST_REQUIRE(later.size() == 1u);
  BOOST_TEST(later[0].attempt == 2u);
  BOOST_TEST(t.stats().taken_over == 0u);
}

BOOST_AUTO_TEST_CASE(stale_nack_and_dead_letter_of_a_taken_over_entry_do_nothing) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  redis_streams_transport t{streams_for(server.port())};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  auto id = xadd(admin, "orders", {{"payload", "x"}});
  auto got = poll_some(t);
  BOOST_REQUIRE(got.size() == 1u);
  run(admin, {"XCLAIM", "orders", "g", "other", "0", id});
  auto nacked = t.nack(got[0], 0ms);
  BOOST_REQUIRE(static_cast<bool>(nacked));
  BOOST_TEST(nacked.stale);
  dead_letter_record rec;
  rec.reason = "stale";
  auto parked = t.dead_letter(got[0], rec);
  BOOST_REQUIRE(static_cast<bool>(parked));
  BOOST_TEST(parked.stale);
  BOOST_TEST(t.stats().stale_settles == 2u);
  BOOST_TEST(integer_of(admin, {"ZCARD", "orders:retry"}) == 0);
  BOOST_TEST(integer_of(admin, {"EXISTS", "orders:dlq"}) == 0);
  BOOST_TEST(owner(admin, "orders", id) == "other");
}

BOOST_AUTO_TEST_CASE(extend_keeps_held_entries_from_recovery_and_reports_lost_ones) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto s = streams_for(server.port());
  s.min_idle = 300ms;
  redis_streams_transport t{s};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  auto kept = xadd(admin, "orders", {{"payload", "a"}});
  auto taken = xadd(admin, "orders", {{"payload", "b"}});
  auto got = poll_some(t);
  BOOST_REQUIRE(got.size() == 2u);
  BOOST_TEST(t.lease()->duration.count() == 300);
  std::this_thread::sleep_for(200ms);
  // Another consumer takes `taken` over; `kept` is still ours.
  run(admin, {"XCLAIM", "orders", "g", "other", "0", taken});
  std::vector<const mailroom::receipt*> receipts{&got[0].handle, &got[1].handle};
  std::vector<std::size_t> lost;
  auto r = t.extend(receipts, mailroom::clock::now() + 300ms, lost);
  BOOST_REQUIRE(static_cast<bool>(r));
  BOOST_TEST((lost == std::vector<std::size_t>{1}));
  BOOST_TEST(t.stats().extended == 1u);
  // 200 ms later `kept` has been idle 200 ms, not 400: recovery with a
  // 300 ms idle threshold leaves it alone, and its delivery count is still 1.
  std::this_thread::sleep_for(200ms);
  auto claimed = run(admin, {"XAUTOCLAIM", "orders", "g", "thief", "300", "0", "JUSTID"});
  BOOST_REQUIRE(claimed->type == REDIS_REPLY_ARRAY);
  BOOST_TEST(claimed->element[1]->elements == 0u);
  BOOST_TEST(owner(admin, "orders", kept) == "c1");
  auto p = run(admin, {"XPENDING", "orders", "g", kept, kept, "1"});
  BOOST_TEST(p->element[0]->element[3]->integer == 1);
}

BOOST_AUTO_TEST_CASE(dead_letter_writes_the_record_and_only_then_acks) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  redis_streams_transport t{streams_for(server.port())};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  auto id = xadd(admin, "orders", {{"payload", "bad"}, {"key", "k-1"}});
  auto got = poll_some(t);
  BOOST_REQUIRE(got.size() == 1u);
  dead_letter_record rec;
  rec.reason = "malformed";
  rec.attempts = 2;
  rec.errors = {"e1", "e2"};
  rec.payload = "masked";
  rec.dead_lettered_at_ms = 1234;

  // The DLQ key holds a string: the write fails and the original stays pending.
  run(admin, {"SET", "orders:dlq", "not a stream"});
  auto r = t.dead_letter(got[0], rec);
  BOOST_TEST(!r);
  BOOST_TEST(r.failure == failure_class::fatal);
  BOOST_TEST(r.what.find("WRONGTYPE") != std::string::npos);
  BOOST_TEST(pending(admin, "orders") == 1);
  BOOST_TEST(owner(admin, "orders", id) == "c1");

  run(admin, {"DEL", "orders:dlq"});
  r = t.dead_letter(got[0], rec);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  BOOST_TEST(pending(admin, "orders") == 0);
  auto dlq = xrange(admin, "orders:dlq");
  BOOST_REQUIRE(dlq.size() == 1u);
  auto& f = dlq[0].second;
  BOOST_TEST(f["payload"] == "masked");
  BOOST_TEST(f["reason"] == "malformed");
  BOOST_TEST(f["attempts"] == "2");
  BOOST_TEST(f["errors"] == "[\"e1\",\"e2\"]");
  BOOST_TEST(f["origin"] == "orders/" + id);
  BOOST_TEST(f["entry_id"] == id);
  BOOST_TEST(f["key"] == "k-1");
  BOOST_TEST(f["dead_lettered_at_ms"] == "1234");
  BOOST_TEST(f["header:key"] == "k-1"); // every other field of the entry
  // The same delivery repeating it (as after a lost reply) writes no second
  // record and is answered as written, not as stale.
  auto again = t.dead_letter(got[0], rec);
  BOOST_REQUIRE(static_cast<bool>(again));
  BOOST_TEST(!again.stale);
  BOOST_TEST(xrange(admin, "orders:dlq").size() == 1u);
  BOOST_TEST(t.stats().stale_settles == 0u);
}

BOOST_AUTO_TEST_CASE(a_dead_letter_whose_reply_was_lost_counts_as_written) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  reply_dropping_proxy proxy{server.port()};
  auto s = streams_for(server.port());
  s.redis.port = proxy.port();
  redis_streams_transport t{s};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  xadd(admin, "orders", {{"payload", "a"}});
  xadd(admin, "orders", {{"payload", "b"}});
  auto got = poll_some(t, 2);
  BOOST_REQUIRE(got.size() == 2u);
  dead_letter_record rec;
  rec.reason = "rejected";
  BOOST_REQUIRE(static_cast<bool>(t.dead_letter(got[0], rec))); // loads the script

  proxy.drop_next_reply();
  auto r = t.dead_letter(got[1], rec); // runs, reply lost, repeated
  BOOST_TEST(proxy.dropped() == 1);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  BOOST_TEST(!r.stale);
  BOOST_TEST(t.stats().dead_lettered == 2u);
  BOOST_TEST(t.stats().stale_settles == 0u);
  BOOST_TEST(xrange(admin, "orders:dlq").size() == 2u);
  BOOST_TEST(pending(admin, "orders") == 0);
}

BOOST_AUTO_TEST_CASE(recovery_hands_over_entries_delivered_too_often_as_poison) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto s = streams_for(server.port());
  s.min_idle = 50ms;
  s.recovery_interval = 10ms;
  s.max_deliveries = 3;
  redis_streams_transport t{s};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  auto poison = xadd(admin, "orders", {{"payload", "{\"card\":\"4111\",\"n\":1}"}});
  auto fine = xadd(admin, "orders", {{"payload", "ok"}});
  run(admin,
      {"XREADGROUP", "GROUP", "g", "dead", "COUNT", "10", "STREAMS", "orders", ">"});
  run(admin, {"XCLAIM", "orders", "g", "dead", "0", poison, "RETRYCOUNT", "3"});
  std::this_thread::sleep_for(60ms);

  auto got = poll_some(t);
  BOOST_REQUIRE(got.size() == 2u);
  std::map<std::string, envelope> by_id;
  for (auto& m : got) {
    by_id[m.id] = m;
  }
  BOOST_TEST(by_id[fine].attempt == 2u);
  BOOST_TEST(by_id[fine].poison.empty());
  BOOST_TEST(by_id[poison].attempt == 4u);
  BOOST_TEST(by_id[poison].poison == "delivery count 4 exceeds 3");
  BOOST_TEST(t.stats().taken_over == 1u);
  BOOST_TEST(t.stats().over_delivered == 1u);
  BOOST_TEST(xrange(admin, "orders:dlq").empty()); // the engine writes it
}

BOOST_AUTO_TEST_CASE(an_outage_is_transient_and_the_group_comes_back) {
  redis_server server;
  redis_streams_transport t{streams_for(server.port())};
  BOOST_REQUIRE(static_cast<bool>(t.ensure_group()));
  server.kill();
  envelope_batch out;
  auto r = t.poll(10, 20ms, out);
  BOOST_TEST(r.failure == failure_class::transient);
  envelope e;
  e.handle.handle = "1-0";
  BOOST_TEST(t.ack({&e}).failure == failure_class::transient);
  BOOST_TEST(t.nack(e, 0ms).failure == failure_class::transient);

  // The restarted server is empty: no group; the poll recreates it.
  server.restart();
  redis_connection admin{redis_for(server.port())};
  auto id = xadd(admin, "orders", {{"payload", "after"}});
  envelope_batch got;
  BOOST_TEST(eventually([&] {
    out.clear();
    auto p = t.poll(10, 20ms, out);
    got.insert(got.end(), out.begin(), out.end());
    return p && !got.empty();
  }));
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].id == id);
}

BOOST_AUTO_TEST_CASE(close_deletes_an_idle_consumer_only) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto consumers = [&] {
    auto reply = run(admin, {"XINFO", "CONSUMERS", "orders", "g"});
    return reply->elements;
  };
  {
    redis_streams_transport idle{streams_for(server.port(), "orders", "idle")};
    xadd(admin, "orders", {{"payload", "x"}});
    ack_all(idle, poll_some(idle));
    BOOST_TEST(consumers() == 1u);
    envelope_batch none;
    BOOST_TEST(static_cast<bool>(idle.close()));
    BOOST_TEST(consumers() == 0u);
    BOOST_TEST(static_cast<bool>(idle.poll(10, 10ms, none))); // empty after close
    BOOST_TEST(none.empty());
  }
  redis_streams_transport busy{streams_for(server.port(), "orders", "busy")};
  xadd(admin, "orders", {{"payload", "x"}});
  BOOST_REQUIRE(poll_some(busy).size() == 1u);
  BOOST_TEST(static_cast<bool>(busy.close()));
  BOOST_TEST(consumers() == 1u); // its pending entry must not be dropped
  BOOST_TEST(pending(admin, "orders") == 1);
}

// ---- through the engine ------------------------------------------------------

BOOST_FIXTURE_TEST_CASE(the_engine_acks_every_entry_once, engine_on_a_stream) {
  std::atomic<int> calls{0};
  handler_registry h;
  h.add("orders", [&](const envelope&, handler_context&) {
    calls++;
    return outcome::ok();
  });
  auto e = start_engine(t, h);
  auto ids = xadd_many(admin, "orders", 1000);
  BOOST_TEST(eventually([&] {
    return calls.load() >= 1000 && last_delivered(admin, "orders") == ids.back() &&
           pending(admin, "orders") == 0;
  }));
  e->stop();
  BOOST_TEST(calls.load() == 1000);
  BOOST_TEST(pending(admin, "orders") == 0);
  BOOST_TEST(e->metrics().acked == 1000u);
  BOOST_TEST(t->stats().read == 1000u);
  BOOST_TEST(t->stats().acked == 1000u);
}

BOOST_FIXTURE_TEST_CASE(a_hung_server_pauses_the_engine_and_nothing_is_lost_or_run_twice,
                        engine_on_a_stream) {
  std::mutex mutex;
  std::map<std::string, int> runs;
  std::atomic<int> calls{0};
  handler_registry h;
  h.add("orders", [&](const envelope& m, handler_context&) {
    {
      std::lock_guard<std::mutex> lock{mutex};
      ++runs[m.id];
    }
    calls++;
    std::this_thread::sleep_for(200us);
    return outcome::ok();
  });
  BOOST_REQUIRE(static_cast<bool>(t->ensure_group()));
  auto ids = xadd_many(admin, "orders", 3000);
  auto e = start_engine(t, h, std::make_shared<mailroom::memory_idempotency_store>());
  BOOST_REQUIRE(eventually([&] { return calls.load() >= 300; }));
  server.pause(); // SIGSTOP: connections stay open, nothing answers
  std::this_thread::sleep_for(1500ms);
  auto during = calls.load();
  server.resume();
  BOOST_TEST(eventually(
      [&] {
        return last_delivered(admin, "orders") == ids.back() &&
               pending(admin, "orders") == 0;
      },
      30000ms));
  e->stop();
  BOOST_TEST(during < 3000); // the pause did stop the work
  BOOST_TEST(e->metrics().transport_errors > 0u);
  std::lock_guard<std::mutex> lock{mutex};
  BOOST_TEST(runs.size() == ids.size());
  int twice = 0;
  for (const auto& [id, n] : runs) {
    twice += n != 1 ? 1 : 0;
  }
  BOOST_TEST(twice == 0);
  BOOST_TEST(e->metrics().dead_lettered == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_retried_entry_comes_back_after_the_delay_with_attempt_2,
                        engine_on_a_stream) {
  seen_log seen;
  std::mutex mutex;
  std::vector<std::chrono::steady_clock::time_point> times;
  handler_registry h;
  h.add("orders", [&](const envelope& m, handler_context& ctx) {
    seen.add(m, ctx);
    {
      std::lock_guard<std::mutex> lock{mutex};
      times.push_back(std::chrono::steady_clock::now());
    }
    if (ctx.attempt == 1) {
      return outcome::retry("not yet", 300ms);
    }
    return outcome::ok();
  });
  auto e = start_engine(t, h, std::make_shared<mailroom::memory_idempotency_store>());
  auto id = xadd(admin, "orders", {{"payload", "p"}, {"key", "k"}});
  BOOST_TEST(
      eventually([&] { return seen.size() >= 2 && pending(admin, "orders") == 0; }));
  e->stop();
  BOOST_REQUIRE(seen.size() == 2u);
  BOOST_TEST(seen.attempts[0] == 1u);
  BOOST_TEST(seen.attempts[1] == 2u);
  BOOST_TEST(seen.messages[1].id == id);
  BOOST_TEST(seen.messages[1].attempt == 2u);
  BOOST_REQUIRE(seen.messages[1].attempt_errors.size() == 1u);
  BOOST_TEST(seen.messages[1].attempt_errors[0] == "not yet");
  BOOST_TEST((times[1] - times[0] >= 290ms));
  BOOST_TEST(integer_of(admin, {"ZCARD", "orders:retry"}) == 0);
  BOOST_TEST(attempt_histories(admin) == 0); // forgotten once acked
  BOOST_TEST(e->metrics().retried == 1u);
  BOOST_TEST(e->metrics().acked == 1u);
}

BOOST_FIXTURE_TEST_CASE(dead_letter_outcomes_and_max_attempts_reach_the_dlq,
                        engine_on_a_stream) {
  handler_registry h;
  h.add("orders", [&](const envelope& m, handler_context& ctx) {
    if (m.payload == "poison") {
      return outcome::dead_letter("unparseable");
    }
    return outcome::retry("failure " + std::to_string(ctx.attempt));
  });
  auto e = start_engine(t, h);
  auto poison = xadd(admin, "orders", {{"payload", "poison"}, {"key", "p-1"}});
  auto flaky = xadd(admin, "orders", {{"payload", "flaky"}, {"key", "f-1"}});
  BOOST_TEST(eventually([&] {
    return integer_of(admin, {"XLEN", "orders:dlq"}) == 2 &&
           pending(admin, "orders") == 0;
  }));
  e->stop();
  std::map<std::string, entry_fields> by_origin;
  for (auto& [dlq_id, f] : xrange(admin, "orders:dlq")) {
    by_origin[f["entry_id"]] = f;
  }
  auto& p = by_origin[poison];
  BOOST_TEST(p["payload"] == "poison");
  BOOST_TEST(p["reason"] == "unparseable");
  BOOST_TEST(p["attempts"] == "1");
  BOOST_TEST(p["errors"] == "[]");
  BOOST_TEST(p["origin"] == "orders/" + poison);
  BOOST_TEST(p["key"] == "p-1");
  BOOST_TEST(!p["dead_lettered_at_ms"].empty());
  auto& f = by_origin[flaky];
  BOOST_TEST(f["payload"] == "flaky");
  BOOST_TEST(f["reason"].find("max attempts (3)") != std::string::npos);
  BOOST_TEST(f["attempts"] == "3"); // the delivery count
  BOOST_TEST(f["errors"] == "[\"failure 1\",\"failure 2\",\"failure 3\"]");
  BOOST_TEST(f["origin"] == "orders/" + flaky);
  BOOST_TEST(integer_of(admin, {"ZCARD", "orders:retry"}) == 0);
  BOOST_TEST(attempt_histories(admin) == 0); // forgotten once dead-lettered
  BOOST_TEST(e->metrics().dead_lettered == 2u);
}

BOOST_FIXTURE_TEST_CASE(poison_is_dead_lettered_by_the_engine_with_history_and_mask,
                        engine_on_a_stream) {
  // A malformed entry, and one that crashed three consumers after two
  // recorded failures: neither reaches the handler.
  auto s = streams_for(server.port());
  s.min_idle = 50ms;
  s.recovery_interval = 10ms;
  s.max_deliveries = 3;
  t = std::make_shared<redis_streams_transport>(s);
  BOOST_REQUIRE(static_cast<bool>(t->ensure_group()));
  auto crashing = xadd(admin, "orders", {{"payload", "{\"card\":\"4111\",\"n\":1}"}});
  run(admin,
      {"XREADGROUP", "GROUP", "g", "dead", "COUNT", "10", "STREAMS", "orders", ">"});
  run(admin, {"XCLAIM", "orders", "g", "dead", "0", crashing, "RETRYCOUNT", "3"});
  auto log = attempt_log_for(*t, s.redis);
  mailroom::attempt_history before{3, {"crash 1", "crash 2"}};
  BOOST_REQUIRE(static_cast<bool>(log->record({{crashing, &before}})));
  auto malformed = xadd(admin, "orders", {{"body", "no payload"}, {"key", "k-bad"}});
  std::atomic<int> calls{0};
  handler_registry h;
  h.add("orders", [&](const envelope&, handler_context&) {
    calls++;
    return outcome::ok();
  });
  auto cfg = fast_config();
  cfg.dead_letter.mask_fields = {"$.card"};
  auto e = start_engine(t, h, std::make_shared<mailroom::memory_idempotency_store>(), cfg);
  BOOST_TEST(eventually([&] {
    return integer_of(admin, {"XLEN", "orders:dlq"}) == 2 && pending(admin, "orders") == 0;
  }));
  e->stop();
  BOOST_TEST(calls.load() == 0);
  std::map<std::string, entry_fields> by_entry;
  for (auto& [dlq_id, f] : xrange(admin, "orders:dlq")) {
    by_entry[f["entry_id"]] = f;
  }
  auto& c = by_entry[crashing];
  BOOST_TEST(c["reason"] == "delivery count 4 exceeds 3");
  BOOST_TEST(c["attempts"] == "4");
  BOOST_TEST(c["errors"] == "[\"crash 1\",\"crash 2\"]");
  BOOST_TEST(c["payload"] == "{\"card\":\"***\",\"n\":1}");
  auto& m = by_entry[malformed];
  BOOST_TEST(m["reason"] == "entry has no \"payload\" field");
  BOOST_TEST(m["key"] == "k-bad");
  BOOST_TEST(m["header:body"] == "no payload");
  BOOST_TEST(e->metrics().rejected == 2u);
  BOOST_TEST(e->metrics().dead_lettered == 0u);
  BOOST_TEST(attempt_histories(admin) == 0);
}

BOOST_FIXTURE_TEST_CASE(the_engine_keeps_an_entry_pending_while_the_dlq_write_fails,
                        engine_on_a_stream) {
  std::atomic<int> calls{0};
  handler_registry h;
  h.add("orders", [&](const envelope&, handler_context&) {
    calls++;
    return outcome::dead_letter("rejected");
  });
  run(admin, {"SET", "orders:dlq", "wrong type"});
  auto e = start_engine(t, h);
  auto id = xadd(admin, "orders", {{"payload", "p"}});
  BOOST_TEST(eventually([&] { return calls.load() == 1; }));
  std::this_thread::sleep_for(300ms); // the dead-letter actor retries meanwhile
  BOOST_TEST(pending(admin, "orders") == 1);
  BOOST_TEST(e->metrics().transport_errors >= 1u);
  run(admin, {"DEL", "orders:dlq"});
  BOOST_TEST(eventually([&] { return pending(admin, "orders") == 0; }));
  e->stop();
  auto dlq = xrange(admin, "orders:dlq");
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].second["entry_id"] == id);
  BOOST_TEST(calls.load() == 1);
}

BOOST_AUTO_TEST_CASE(a_dead_letter_redone_after_a_take_over_is_counted_once) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto s = streams_for(server.port());
  s.min_idle = 100ms; // taken over (by this very consumer) while its DLQ write waits
  s.recovery_interval = 20ms;
  s.max_deliveries = 0;
  auto t = std::make_shared<redis_streams_transport>(s);
  std::atomic<int> calls{0};
  handler_registry h;
  h.add("orders", [&](const envelope&, handler_context&) {
    calls++;
    return outcome::dead_letter("rejected");
  });
  run(admin, {"SET", "orders:dlq", "wrong type"}); // every DLQ write fails
  // No lease renewal (as when the extend calls fail too): the entry's idle
  // time runs out while the write waits, and recovery takes it over.
  auto e = start_engine(
      std::make_shared<mailroom::testing::forwarding_transport>(t, true), h);
  auto id = xadd(admin, "orders", {{"payload", "p"}});
  BOOST_TEST(eventually([&] { return calls.load() >= 2; }));
  run(admin, {"DEL", "orders:dlq"});
  // Each delivery is either the one written or found stale, never both.
  BOOST_TEST(eventually([&] {
    auto m = e->metrics();
    return static_cast<int>(m.dead_lettered + m.fenced) == calls.load();
  }));
  BOOST_TEST(pending(admin, "orders") == 0);
  e->stop();
  auto m = e->metrics();
  BOOST_TEST(m.dead_lettered == 1u);
  BOOST_TEST(m.fenced == static_cast<std::uint64_t>(calls.load() - 1));
  BOOST_TEST(t->stats().dead_lettered == 1u);
  BOOST_TEST(t->stats().stale_settles >= 1u);
  auto dlq = xrange(admin, "orders:dlq");
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST(dlq[0].second["entry_id"] == id);
}

BOOST_AUTO_TEST_CASE(an_entry_waiting_for_its_dead_letter_write_keeps_its_lease) {
  // The same wait as above with lease renewal on: the idle time never runs
  // out, recovery never takes the entry over, the handler runs once.
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto s = streams_for(server.port());
  s.min_idle = 150ms;
  s.recovery_interval = 20ms;
  s.max_deliveries = 0;
  auto t = std::make_shared<redis_streams_transport>(s);
  std::atomic<int> calls{0};
  handler_registry h;
  h.add("orders", [&](const envelope&, handler_context&) {
    calls++;
    return outcome::dead_letter("rejected");
  });
  run(admin, {"SET", "orders:dlq", "wrong type"});
  auto e = start_engine(t, h);
  auto id = xadd(admin, "orders", {{"payload", "p"}});
  BOOST_TEST(eventually([&] { return calls.load() == 1; }));
  std::this_thread::sleep_for(800ms); // five idle times
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(owner(admin, "orders", id) == "c1");
  BOOST_TEST(t->stats().extended >= 3u);
  run(admin, {"DEL", "orders:dlq"});
  BOOST_TEST(eventually([&] { return pending(admin, "orders") == 0; }));
  e->stop();
  BOOST_TEST(e->metrics().dead_lettered == 1u);
  BOOST_TEST(t->stats().taken_over == 0u);
  BOOST_TEST(xrange(admin, "orders:dlq").size() == 1u);
}

BOOST_AUTO_TEST_CASE(entries_of_a_crashed_consumer_are_taken_over_and_acked) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto s = streams_for(server.port());
  s.min_idle = 100ms;
  redis_streams_transport setup{s};
  BOOST_REQUIRE(static_cast<bool>(setup.ensure_group()));
  auto ids = xadd_many(admin, "orders", 50);
  // "dead" reads everything and never acks: a crashed consumer.
  auto read = run(admin, {"XREADGROUP", "GROUP", "g", "dead", "COUNT", "100", "STREAMS",
                          "orders", ">"});
  BOOST_REQUIRE(read->element[0]->element[1]->elements == 50u);
  auto t = std::make_shared<redis_streams_transport>(s);
  seen_log seen;
  handler_registry h;
  h.add("orders", [&](const envelope& m, handler_context& ctx) {
    seen.add(m, ctx);
    return outcome::ok();
  });
  auto start = std::chrono::steady_clock::now();
  auto e = start_engine(t, h, std::make_shared<mailroom::memory_idempotency_store>());
  BOOST_TEST(eventually([&] { return pending(admin, "orders") == 0; }));
  auto took = std::chrono::steady_clock::now() - start;
  e->stop();
  BOOST_TEST((took >= 50ms));
  std::set<std::string> got;
  for (std::size_t i = 0; i < seen.messages.size(); ++i) {
    got.insert(seen.messages[i].id);
    BOOST_TEST(seen.attempts[i] == 2u);
  }
  BOOST_TEST(got == std::set<std::string>(ids.begin(), ids.end()));
  BOOST_TEST(seen.size() == 50u);
  BOOST_TEST(t->stats().taken_over == 50u);
  BOOST_TEST(t->stats().read == 0u);
}

BOOST_FIXTURE_TEST_CASE(duplicate_keys_are_handled_once_with_a_store,
                        engine_on_a_stream) {
  seen_log seen;
  handler_registry h;
  h.add("orders", [&](const envelope& m, handler_context& ctx) {
    seen.add(m, ctx);
    return outcome::ok();
  });
  auto e = start_engine(t, h, std::make_shared<mailroom::memory_idempotency_store>());
  xadd(admin, "orders", {{"payload", "a"}, {"key", "same"}});
  BOOST_TEST(
      eventually([&] { return seen.size() == 1 && pending(admin, "orders") == 0; }));
  xadd(admin, "orders", {{"payload", "b"}, {"key", "same"}}); // a replay
  auto plain1 = xadd(admin, "orders", {{"payload", "c"}});    // keyed by entry id
  auto plain2 = xadd(admin, "orders", {{"payload", "c"}});
  BOOST_TEST(
      eventually([&] { return seen.size() == 3 && pending(admin, "orders") == 0; }));
  e->stop();
  BOOST_REQUIRE(seen.size() == 3u);
  BOOST_TEST(seen.messages[0].key == "same");
  std::set<std::string> keys{seen.messages[1].key, seen.messages[2].key};
  BOOST_TEST((keys == std::set<std::string>{plain1, plain2}));
  BOOST_TEST(e->metrics().deduped == 1u);
}

BOOST_FIXTURE_TEST_CASE(payloads_round_trip_byte_exact, engine_on_a_stream) {
  std::vector<std::string> payloads{std::string{"nul\0in\0the\0middle", 18},
                                    "crlf\r\n*1\r\n$4\r\nPING\r\n", "%s%n%d", "",
                                    blob_1mib()};
  std::mutex mutex;
  std::map<std::string, std::string> got; // key -> payload
  handler_registry h;
  h.add("orders", [&](const envelope& m, handler_context&) {
    std::lock_guard<std::mutex> lock{mutex};
    got[m.key] = m.payload;
    return m.key == "k-4" ? outcome::dead_letter("too big") : outcome::ok();
  });
  auto e = start_engine(t, h);
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    xadd(admin, "orders", {{"key", "k-" + std::to_string(i)}, {"payload", payloads[i]}});
  }
  BOOST_TEST(eventually([&] {
    std::lock_guard<std::mutex> lock{mutex};
    return got.size() == payloads.size() && pending(admin, "orders") == 0;
  }));
  e->stop();
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    BOOST_TEST((got["k-" + std::to_string(i)] == payloads[i]), "payload " << i);
  }
  auto dlq = xrange(admin, "orders:dlq");
  BOOST_REQUIRE(dlq.size() == 1u);
  BOOST_TEST((dlq[0].second["payload"] == payloads[4]));
}

BOOST_AUTO_TEST_CASE(two_engines_in_one_group_handle_each_entry_once) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto a = std::make_shared<redis_streams_transport>(
      streams_for(server.port(), "orders", "a"));
  auto b = std::make_shared<redis_streams_transport>(
      streams_for(server.port(), "orders", "b"));
  BOOST_REQUIRE(static_cast<bool>(a->ensure_group()));
  std::mutex mutex;
  std::map<std::string, int> handled; // entry id -> times
  std::atomic<int> by_a{0}, by_b{0};
  auto counting = [&](std::atomic<int>& mine) {
    handler_registry h;
    h.add("orders", [&](const envelope& m, handler_context&) {
      mine++;
      std::lock_guard<std::mutex> lock{mutex};
      handled[m.id]++;
      return outcome::ok();
    });
    return h;
  };
  auto ea = start_engine(a, counting(by_a));
  auto eb = start_engine(b, counting(by_b));
  std::this_thread::sleep_for(50ms); // both block in XREADGROUP
  auto ids = xadd_many(admin, "orders", 2000);
  BOOST_TEST(eventually([&] {
    return last_delivered(admin, "orders") == ids.back() && pending(admin, "orders") == 0;
  }));
  ea->stop();
  eb->stop();
  BOOST_TEST(handled.size() == 2000u);
  int twice = 0;
  for (const auto& id : ids) {
    twice += handled[id] != 1 ? 1 : 0;
  }
  BOOST_TEST(twice == 0);
  BOOST_TEST(by_a.load() + by_b.load() == 2000);
  BOOST_TEST(by_a.load() > 0);
  BOOST_TEST(by_b.load() > 0);
  BOOST_TEST_MESSAGE("engine a handled " << by_a.load() << ", engine b " << by_b.load());
}

// The other half of the next test: a consumer process. It does nothing unless
// started by that test with MAILROOM_STREAMS_CHILD_PORT set.
BOOST_AUTO_TEST_CASE(child_consumer_process) {
  const char* port = std::getenv("MAILROOM_STREAMS_CHILD_PORT");
  if (port == nullptr) {
    BOOST_TEST(true);
    return;
  }
  redis_connection admin{redis_for(std::atoi(port))};
  auto t = std::make_shared<redis_streams_transport>(
      streams_for(std::atoi(port), "orders", "child-" + std::to_string(::getpid())));
  std::mutex mutex;
  std::vector<std::string> ids;
  handler_registry h;
  h.add("orders", [&](const envelope& m, handler_context&) {
    std::lock_guard<std::mutex> lock{mutex};
    ids.push_back(m.id);
    return outcome::ok();
  });
  auto e = start_engine(t, h);
  run(admin, {"SET", "child-ready", "1"});
  BOOST_REQUIRE(eventually(
      [&] {
        return integer_of(admin, {"EXISTS", "stop"}) == 1;
      },
      20000ms));
  e->stop();
  for (std::size_t first = 0; first < ids.size(); first += 500) {
    redis_command push{"RPUSH", "handled-by-child"};
    for (std::size_t i = first; i < std::min(ids.size(), first + 500); ++i) {
      push.push_back(ids[i]);
    }
    run(admin, push);
  }
  run(admin, {"SET", "child-done", "1"});
}

BOOST_AUTO_TEST_CASE(two_processes_in_one_group_handle_each_entry_once) {
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  auto t = std::make_shared<redis_streams_transport>(
      streams_for(server.port(), "orders", "parent"));
  BOOST_REQUIRE(static_cast<bool>(t->ensure_group()));
  ::setenv("MAILROOM_STREAMS_CHILD_PORT", std::to_string(server.port()).c_str(), 1);
  process_runner child{{self_exe(), "--run_test=child_consumer_process"}};
  ::unsetenv("MAILROOM_STREAMS_CHILD_PORT");
  BOOST_REQUIRE(eventually([&] {
    return integer_of(admin, {"EXISTS", "child-ready"}) == 1;
  }));

  std::mutex mutex;
  std::vector<std::string> mine;
  handler_registry h;
  h.add("orders", [&](const envelope& m, handler_context&) {
    std::lock_guard<std::mutex> lock{mutex};
    mine.push_back(m.id);
    return outcome::ok();
  });
  auto e = start_engine(t, h);
  std::this_thread::sleep_for(50ms);
  auto ids = xadd_many(admin, "orders", 2000);
  BOOST_TEST(eventually([&] {
    return last_delivered(admin, "orders") == ids.back() && pending(admin, "orders") == 0;
  }));
  e->stop();
  run(admin, {"SET", "stop", "1"});
  BOOST_REQUIRE_EQUAL(child.wait(10000ms), 0);
  BOOST_TEST(integer_of(admin, {"EXISTS", "child-done"}) == 1);

  std::map<std::string, int> handled;
  for (const auto& id : mine) {
    handled[id]++;
  }
  auto theirs = run(admin, {"LRANGE", "handled-by-child", "0", "-1"});
  for (std::size_t i = 0; i < theirs->elements; ++i) {
    handled[text(theirs->element[i])]++;
  }
  BOOST_TEST(handled.size() == 2000u);
  int not_once = 0;
  for (const auto& id : ids) {
    not_once += handled[id] != 1 ? 1 : 0;
  }
  BOOST_TEST(not_once == 0);
  BOOST_TEST(mine.size() > 0u);
  BOOST_TEST(theirs->elements > 0u);
  BOOST_TEST(mine.size() + theirs->elements == 2000u);
  BOOST_TEST_MESSAGE("parent handled " << mine.size() << ", child " << theirs->elements);
}

// ---- the transport contract ----------------------------------------------------

// The contract's view of a Redis stream: entries idle for 300 ms are taken
// over by recovery (the lease), and an entry without a payload field is
// poison.
struct a_redis_stream {
  std::chrono::milliseconds lease{300};
  redis_server server;
  redis_connection admin{redis_for(server.port())};
  std::shared_ptr<redis_streams_transport> streams = make();
  std::shared_ptr<mailroom::transport> t = streams;

  std::shared_ptr<redis_streams_transport> make() {
    auto s = streams_for(server.port());
    s.min_idle = lease;
    s.recovery_interval = 20ms;
    auto out = std::make_shared<redis_streams_transport>(s);
    BOOST_REQUIRE(static_cast<bool>(out->ensure_group()));
    return out;
  }
  void produce(const std::string& key, const std::string& payload) {
    xadd(admin, "orders", {{"payload", payload}, {"key", key}});
  }
  bool make_poison() {
    xadd(admin, "orders", {{"body", "no payload field"}});
    return true;
  }
  std::vector<std::string> dlq_reasons() {
    std::vector<std::string> out;
    for (auto& [id, f] : xrange(admin, "orders:dlq")) {
      out.push_back(f["reason"]);
    }
    return out;
  }
};

MAILROOM_TRANSPORT_CONTRACT(a_redis_stream)
