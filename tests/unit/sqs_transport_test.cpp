#define BOOST_TEST_MODULE sqs_transport
#include <boost/test/unit_test.hpp>

// The SQS transport on its own, against a real SQS server (ElasticMQ, one
// for the executable; each case creates queues of its own): the transport
// contract, retries invisible for their delay, visibility heartbeats, stale
// receipts, dead-letter records read back with boto3, FIFO group order and
// start-up failures.

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "clients/aws/sqs_api.hpp"
#include "tests/support/canned_http_server.hpp"
#include "tests/support/elasticmq_server.hpp"
#include "tests/support/failure_class_print.hpp"
#include "tests/support/process_runner.hpp"
#include "tests/support/transport_contract.hpp"
#include "transports/sqs/sqs_transport.hpp"

using namespace std::chrono_literals;
using namespace mailroom;
using mailroom::testing::elasticmq_server;
using mailroom::testing::process_runner;
using mailroom::testing::sqs_client_argv;
namespace contract = mailroom::testing::transport_contract;

namespace {

elasticmq_server& server() {
  static elasticmq_server instance{{}};
  return instance;
}

std::string unique_name(const std::string& stem) {
  static std::atomic<int> n{0};
  return stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

// Creates a queue (FIFO when the name ends in ".fifo") and returns its URL.
std::string create_queue(const std::string& name, int visibility_s = 1) {
  nlohmann::json attributes = {{"VisibilityTimeout", std::to_string(visibility_s)}};
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".fifo") == 0) {
    attributes["FifoQueue"] = "true";
    attributes["ContentBasedDeduplication"] = "true";
  }
  nlohmann::json request = {{"QueueName", name}, {"Attributes", attributes}};
  auto answer = server().call("CreateQueue", request.dump());
  BOOST_REQUIRE(answer);
  BOOST_REQUIRE_MESSAGE(answer->status == 200, answer->body);
  return nlohmann::json::parse(answer->body).at("QueueUrl").get<std::string>();
}

aws_credentials fake_credentials() {
  aws_credentials c;
  c.access_key_id = "mailroom-test";
  c.secret_access_key = secret_text{"mailroom-test"};
  return c;
}

sqs_transport_settings settings_for(const std::string& url, const std::string& dlq) {
  sqs_transport_settings s;
  s.queue_url = url;
  s.dlq_queue_url = dlq;
  s.endpoint_url = server().endpoint();
  s.region = "elasticmq";
  s.wait_time_s = 1;
  s.visibility_timeout_s = 1;
  s.heartbeat_interval_s = 0;
  s.key_attribute = "idem";
  s.max_receives = 3;
  s.request_timeout_ms = 5000;
  s.startup_timeout_ms = 5000;
  return s;
}

// Runs tests/support/sqs_client.py (boto3) with `args`; returns its JSON output.
nlohmann::json boto3(std::vector<std::string> args) {
  auto argv = sqs_client_argv();
  argv.insert(argv.end(), args.begin(), args.end());
  process_runner run{argv};
  int code = run.wait(60s);
  BOOST_REQUIRE_MESSAGE(code == 0, "sqs_client.py " << args.front() << " exited " << code
                                                    << ": " << run.err());
  return nlohmann::json::parse(run.out());
}

// Sends with our own client (faster than a boto3 process per message).
void send_all(const std::string& url, const std::vector<std::string>& bodies,
              const std::string& group = {}) {
  sqs_settings s;
  s.endpoint = server().endpoint();
  s.region = "elasticmq";
  sqs_api api{s, fake_credentials()};
  for (const auto& body : bodies) {
    sqs_send_request r;
    r.queue_url = url;
    r.body = body;
    r.group_id = group;
    auto sent = api.send_message(r);
    BOOST_REQUIRE_MESSAGE(sent, sent.status.what);
  }
}

int count(const std::string& url, const char* what) {
  return boto3({"count", url}).at(what).get<int>();
}

} // namespace

// ---- the transport contract ----------------------------------------------------

// Queues with a visibility timeout of 1 s (the lease), keyed by the "idem"
// attribute, a message received more than 3 times is poison.
struct an_sqs_queue {
  std::chrono::milliseconds lease{1000};
  std::string name = unique_name("contract");
  std::string url = create_queue(name);
  std::string dlq = create_queue(name + "-dlq");
  std::shared_ptr<sqs_transport> sqs =
      std::make_shared<sqs_transport>(settings_for(url, dlq), fake_credentials());
  std::shared_ptr<mailroom::transport> t = sqs;

  void produce(const std::string& key, const std::string& payload) {
    boto3({"send", url, payload, "--attr", "idem=" + key});
  }
  bool make_poison() {
    produce("k-poison", "received too often");
    return true;
  }
  std::vector<std::string> dlq_reasons() {
    // Received with visibility 0, so they stay for dead_letter_depth(); the
    // same record may then come twice.
    std::vector<std::string> out;
    std::set<std::string> seen;
    for (const auto& m : boto3({"receive", dlq, "--visibility", "0", "--wait", "1"})) {
      if (!seen.insert(m.at("MessageId").get<std::string>()).second) {
        continue;
      }
      const auto& a = m.at("MessageAttributes");
      out.push_back(a.contains("mailroom.reason") ? a.at("mailroom.reason").get<std::string>()
                                                  : "<no reason attribute>");
    }
    return out;
  }
};

MAILROOM_TRANSPORT_CONTRACT(an_sqs_queue)

// ---- receive, ack, nack --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(an_acked_message_is_gone_and_a_nacked_one_stays_invisible_its_delay) {
  auto url = create_queue(unique_name("nack"), 5);
  auto dlq = create_queue(unique_name("nack-dlq"));
  auto s = settings_for(url, dlq);
  s.visibility_timeout_s = 5;
  sqs_transport t{s, fake_credentials()};
  send_all(url, {"keep", "retry"});
  auto got = contract::poll_until(t, 2);
  BOOST_REQUIRE(got.size() == 2u);
  const auto& keep = got[0].payload == "keep" ? got[0] : got[1];
  const auto& retry = got[0].payload == "keep" ? got[1] : got[0];
  BOOST_TEST(keep.key == keep.id); // no "idem" attribute: keyed by MessageId
  BOOST_TEST(keep.topic == queue_name_of(url));
  BOOST_REQUIRE(static_cast<bool>(t.ack({&keep})));
  auto nacked_at = std::chrono::steady_clock::now();
  BOOST_REQUIRE(static_cast<bool>(t.nack(retry, 2000ms)));
  BOOST_TEST(contract::poll_for(t, 1500ms).empty());
  auto again = contract::poll_until(t, 1, 6s);
  BOOST_REQUIRE(again.size() == 1u);
  BOOST_TEST((std::chrono::steady_clock::now() - nacked_at >= 1900ms));
  BOOST_TEST(again[0].payload == "retry");
  BOOST_TEST(again[0].attempt == 2u);
  BOOST_REQUIRE(static_cast<bool>(t.ack({&again[0]})));
  BOOST_TEST(count(url, "visible") == 0);
  BOOST_TEST(count(url, "not_visible") == 0);
  BOOST_TEST(t.stats().deleted == 2u);
  BOOST_TEST(t.stats().nacked == 1u);
}

BOOST_AUTO_TEST_CASE(acks_of_more_than_ten_go_in_batches_and_repeating_one_is_harmless) {
  auto url = create_queue(unique_name("many"), 30);
  auto dlq = create_queue(unique_name("many-dlq"));
  auto s = settings_for(url, dlq);
  s.visibility_timeout_s = 30;
  s.receivers = 3;
  sqs_transport t{s, fake_credentials()};
  std::vector<std::string> bodies;
  for (int i = 0; i < 25; ++i) {
    bodies.push_back("m-" + std::to_string(i));
  }
  send_all(url, bodies);
  auto got = contract::poll_until(t, 25);
  BOOST_REQUIRE(got.size() == 25u);
  std::set<std::string> seen;
  std::vector<const envelope*> all;
  for (const auto& m : got) {
    seen.insert(m.payload);
    all.push_back(&m);
  }
  BOOST_TEST(seen.size() == 25u);
  std::vector<std::size_t> stale;
  BOOST_REQUIRE(static_cast<bool>(t.ack_checked(all, stale)));
  BOOST_TEST(stale.empty());
  // The engine repeats an ack whose reply it did not trust: nothing is stale.
  BOOST_REQUIRE(static_cast<bool>(t.ack_checked(all, stale)));
  BOOST_TEST(stale.empty());
  BOOST_TEST(t.stats().deleted == 25u);
  BOOST_TEST(count(url, "visible") + count(url, "not_visible") == 0);
}

// A canned server answers a partial batch: one entry deleted, one failed
// for the service's reasons (sent again, deleted then), one stale. The
// transport never polls here, so its receivers send nothing.
BOOST_AUTO_TEST_CASE(a_partially_failed_delete_batch_retries_only_the_failed_entries) {
  using canned = mailroom::testing::canned_http_server;
  const std::string attributes = R"({"Attributes":{"VisibilityTimeout":"30"}})";
  canned fake{{{200, {}, attributes, false},
               {200, {}, attributes, false},
               {200, {}, R"({"Successful":[{"Id":"0"}],"Failed":[)"
                         R"({"Id":"1","Code":"InternalError","SenderFault":false,"Message":"x"},)"
                         R"({"Id":"2","Code":"ReceiptHandleIsInvalid","SenderFault":true,)"
                         R"("Message":"stale"}]})", false},
               {200, {}, R"({"Successful":[{"Id":"1"}]})", false},
               {200, {}, R"({"Failed":[{"Id":"1","Code":"InternalError","Message":"x"}]})",
                false}}};
  auto s = settings_for(fake.origin() + "/000000000000/q",
                        fake.origin() + "/000000000000/d");
  s.endpoint_url = fake.origin();
  s.receivers = 1;
  sqs_transport t{s, fake_credentials()};
  envelope a, b, c;
  a.handle.handle = "handle-a";
  b.handle.handle = "handle-b";
  c.handle.handle = "handle-c";
  std::vector<std::size_t> stale;
  auto r = t.ack_checked({&a, &b, &c}, stale);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  BOOST_TEST((stale == std::vector<std::size_t>{2}));
  auto requests = fake.requests();
  BOOST_REQUIRE(requests.size() == 4u);
  BOOST_TEST(requests[3].body.find("handle-b") != std::string::npos);
  BOOST_TEST(requests[3].body.find("handle-a") == std::string::npos);
  BOOST_TEST(t.stats().deleted == 2u);
  BOOST_TEST(t.stats().delete_retries == 1u);
  // An entry that keeps failing is never reported as acked; the receipts
  // deleted before are not sent again when the engine repeats the ack (entry
  // ids are indices into the batch given: "1" is handle-d).
  envelope d;
  d.handle.handle = "handle-d";
  stale.clear();
  auto failed = t.ack_checked({&a, &d}, stale);
  BOOST_TEST(failed.failure == failure_class::transient);
  BOOST_TEST(failed.what.find("InternalError") != std::string::npos);
  BOOST_TEST(stale.empty());
  for (std::size_t i = 4; i < fake.requests().size(); ++i) {
    BOOST_TEST(fake.requests()[i].body.find("handle-a") == std::string::npos);
  }
  BOOST_TEST(t.stats().deleted == 2u);
}

// ---- visibility heartbeats and stale receipts --------------------------------------

BOOST_AUTO_TEST_CASE(extend_keeps_a_message_invisible_beyond_its_visibility_timeout) {
  auto url = create_queue(unique_name("extend"));
  auto dlq = create_queue(unique_name("extend-dlq"));
  auto s = settings_for(url, dlq);
  s.visibility_timeout_s = 2;
  s.heartbeat_interval_s = 0;
  sqs_transport t{s, fake_credentials()};
  send_all(url, {"slow"});
  auto got = contract::poll_until(t, 1);
  BOOST_REQUIRE(got.size() == 1u);
  // 3x the visibility timeout, extended every 500 ms as the lease keeper would.
  auto end = std::chrono::steady_clock::now() + 6s;
  while (std::chrono::steady_clock::now() < end) {
    std::vector<std::size_t> lost;
    auto r = t.extend({&got[0].handle}, clock::now() + 2s, lost);
    BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
    BOOST_TEST(lost.empty());
    envelope_batch none;
    BOOST_REQUIRE(static_cast<bool>(t.poll(10, 500ms, none)));
    BOOST_TEST(none.empty());
  }
  BOOST_TEST(count(url, "not_visible") == 1);
  BOOST_TEST(t.stats().extended >= 10u);
  // No more heartbeats: it comes back once the visibility runs out.
  auto again = contract::poll_until(t, 1, 5s);
  BOOST_REQUIRE(again.size() == 1u);
  BOOST_TEST(again[0].attempt == 2u);
  // The first receipt is no longer ours: extending it reports it lost, a
  // nack and an ack of it are stale.
  std::vector<std::size_t> lost;
  BOOST_REQUIRE(static_cast<bool>(t.extend({&got[0].handle}, clock::now() + 2s, lost)));
  BOOST_TEST((lost == std::vector<std::size_t>{0}));
  auto nack = t.nack(got[0], 0ms);
  BOOST_TEST(static_cast<bool>(nack));
  BOOST_TEST(nack.stale);
  std::vector<std::size_t> stale;
  BOOST_REQUIRE(static_cast<bool>(t.ack_checked({&got[0]}, stale)));
  BOOST_TEST_MESSAGE("a delete with a stale receipt is " << (stale.empty() ? "applied" : "stale"));
  BOOST_TEST(!t.lease().has_value()); // heartbeat_interval_s = 0: no lease for the engine
}

BOOST_AUTO_TEST_CASE(lease_terms_follow_the_settings) {
  auto url = create_queue(unique_name("terms"));
  auto dlq = create_queue(unique_name("terms-dlq"));
  auto s = settings_for(url, dlq);
  s.visibility_timeout_s = 30;
  s.heartbeat_interval_s = 10;
  sqs_transport t{s, fake_credentials()};
  auto terms = t.lease();
  BOOST_REQUIRE(terms.has_value());
  BOOST_TEST(terms->duration.count() == 30000);
  BOOST_TEST(terms->renew_every.count() == 10000);
  BOOST_TEST(!t.retries_keep_order());
  BOOST_TEST(t.counts_deliveries());
}

// ---- dead-letters ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_dead_letter_record_carries_its_attributes) {
  auto url = create_queue(unique_name("dl"), 5);
  auto dlq = create_queue(unique_name("dl-dlq"));
  sqs_transport t{settings_for(url, dlq), fake_credentials()};
  boto3({"send", url, R"({"card":"***"})", "--attr", "idem=order-7"});
  auto got = contract::poll_until(t, 1);
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].key == "order-7");
  dead_letter_record rec;
  rec.reason = "handler: no such customer";
  rec.attempts = 5;
  rec.errors = {"e1", "timeout \"2\""};
  rec.first_failure_ms = 1700000000123;
  rec.dead_lettered_at_ms = 1700000009999;
  rec.payload = R"({"card":"***"})";
  auto r = t.dead_letter(got[0], rec);
  BOOST_REQUIRE_MESSAGE(static_cast<bool>(r), r.what);
  auto records = boto3({"receive", dlq, "--wait", "1", "--visibility", "30"});
  BOOST_REQUIRE(records.size() == 1u);
  BOOST_TEST(records[0].at("Body").get<std::string>() == rec.payload);
  const auto& a = records[0].at("MessageAttributes");
  BOOST_TEST(a.at("mailroom.reason").get<std::string>() == rec.reason);
  BOOST_TEST(a.at("mailroom.attempts").get<std::string>() == "5");
  BOOST_TEST((nlohmann::json::parse(a.at("mailroom.errors").get<std::string>()) ==
              nlohmann::json(rec.errors)));
  BOOST_TEST(a.at("mailroom.source.queue").get<std::string>() == url);
  BOOST_TEST(a.at("mailroom.source.message_id").get<std::string>() == got[0].id);
  BOOST_TEST(a.at("mailroom.first_failure_ms").get<std::string>() == "1700000000123");
  BOOST_TEST(a.at("mailroom.key").get<std::string>() == "order-7");
  BOOST_TEST(a.at("mailroom.dead_lettered_at_ms").get<std::string>() == "1700000009999");
  // The original is gone.
  BOOST_TEST(count(url, "visible") + count(url, "not_visible") == 0);
}

// ---- FIFO queues -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_fifo_queue_delivers_each_group_in_order) {
  auto url = create_queue(unique_name("jobs") + ".fifo", 5);
  auto dlq = create_queue(unique_name("jobs-dlq") + ".fifo");
  auto s = settings_for(url, dlq);
  s.visibility_timeout_s = 5;
  s.receivers = 2;
  sqs_transport t{s, fake_credentials()};
  BOOST_TEST(t.fifo());
  BOOST_TEST(t.retries_keep_order());
  std::vector<std::string> a, b;
  for (int i = 0; i < 6; ++i) {
    a.push_back("a-" + std::to_string(i));
    b.push_back("b-" + std::to_string(i));
  }
  send_all(url, a, "ga");
  send_all(url, b, "gb");
  // The first message of group a fails: it and what the engine holds behind
  // it of its group are handed back, and come again in order.
  auto first = contract::poll_until(t, 1);
  BOOST_REQUIRE(first.size() == 1u);
  std::map<std::string, std::vector<std::string>> order;
  envelope_batch held = first;
  auto more = contract::poll_for(t, 500ms);
  held.insert(held.end(), more.begin(), more.end());
  const std::string failing_group = held[0].ordering_key;
  BOOST_TEST((failing_group == "ga" || failing_group == "gb"));
  for (const auto& m : held) {
    if (m.ordering_key == failing_group) {
      BOOST_REQUIRE(static_cast<bool>(t.nack(m, 0ms)));
    } else {
      order[m.ordering_key].push_back(m.payload);
      BOOST_REQUIRE(static_cast<bool>(t.ack({&m})));
    }
  }
  auto end = std::chrono::steady_clock::now() + 20s;
  std::size_t total = 0;
  for (auto& [g, v] : order) {
    total += v.size();
  }
  while (total < 12 && std::chrono::steady_clock::now() < end) {
    envelope_batch got;
    BOOST_REQUIRE(static_cast<bool>(t.poll(10, 200ms, got)));
    for (const auto& m : got) {
      order[m.ordering_key].push_back(m.payload);
      ++total;
      BOOST_REQUIRE(static_cast<bool>(t.ack({&m})));
    }
  }
  BOOST_TEST(order["ga"] == a, boost::test_tools::per_element());
  BOOST_TEST(order["gb"] == b, boost::test_tools::per_element());
}

// ---- start-up ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_missing_queue_or_redrive_less_queue_stops_the_start) {
  auto dlq = create_queue(unique_name("x-dlq"));
  try {
    sqs_transport t{settings_for(server().queue_url("no-such-queue"), dlq), fake_credentials()};
    BOOST_FAIL("started on a missing queue");
  } catch (const std::runtime_error& e) {
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST(std::string{e.what()}.find("QueueDoesNotExist") != std::string::npos);
    BOOST_TEST(std::string{e.what()}.find("no-such-queue") != std::string::npos);
  }
  // Resolved by name; without dlq_queue_url the queue needs a redrive policy.
  auto name = unique_name("by-name");
  create_queue(name);
  auto s = settings_for("", "");
  s.queue_name = name;
  try {
    sqs_transport t{s, fake_credentials()};
    BOOST_FAIL("started without anywhere to dead-letter");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string{e.what()}.find("redrive policy") != std::string::npos);
  }
  s.dlq_queue_url = dlq;
  sqs_transport t{s, fake_credentials()};
  BOOST_TEST(t.queue_url() == server().queue_url(name));
}

// The server goes away and comes back (empty, on the same port): the
// receivers retry with backoff, one warning for the outage, and resume.
BOOST_AUTO_TEST_CASE(receiving_resumes_after_the_server_restarts) {
  elasticmq_server::queue q, d;
  q.name = "outage";
  q.visibility_timeout_s = 5;
  d.name = "outage-dlq";
  elasticmq_server own{{q, d}};
  auto s = settings_for(own.queue_url("outage"), own.queue_url("outage-dlq"));
  s.endpoint_url = own.endpoint();
  s.request_timeout_ms = 2000;
  sqs_transport t{s, fake_credentials()};
  own.stop();
  envelope_batch none;
  auto end = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < end) {
    BOOST_REQUIRE(static_cast<bool>(t.poll(10, 200ms, none)));
  }
  BOOST_TEST(none.empty());
  BOOST_TEST(t.stats().receive_errors >= 1u);
  own.restart();
  sqs_settings cs;
  cs.endpoint = own.endpoint();
  cs.region = "elasticmq";
  sqs_api api{cs, fake_credentials()};
  sqs_send_request send;
  send.queue_url = own.queue_url("outage");
  send.body = "after the outage";
  BOOST_REQUIRE(api.send_message(send));
  auto got = contract::poll_until(t, 1, 20s);
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].payload == "after the outage");
  BOOST_REQUIRE(static_cast<bool>(t.ack({&got[0]})));
}
