#define BOOST_TEST_MODULE sqs_api
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "clients/aws/sqs_api.hpp"
#include "tests/support/elasticmq_server.hpp"
#include "tests/support/failure_class_print.hpp"
#include "tests/support/process_runner.hpp"

using namespace mailroom;
using mailroom::testing::elasticmq_server;
using mailroom::testing::process_runner;
using mailroom::testing::sqs_client_argv;

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point begin) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - begin).count();
}

std::vector<elasticmq_server::queue> declared_queues() {
  elasticmq_server::queue work;
  work.name = "work";
  work.dead_letter_queue = "work-dlq";
  work.max_receive_count = 3;
  elasticmq_server::queue dlq;
  dlq.name = "work-dlq";
  elasticmq_server::queue jobs;
  jobs.name = "jobs.fifo";
  jobs.fifo = true;
  std::vector<elasticmq_server::queue> queues = {work, dlq, jobs};
  for (const char* name : {"poll", "visibility", "batch", "reuse", "boto"}) {
    elasticmq_server::queue q;
    q.name = name;
    queues.push_back(q);
  }
  return queues;
}

// One server for the file (it takes ~2-3 s to start); the outage test has its own.
elasticmq_server& server() {
  static elasticmq_server instance{declared_queues()};
  return instance;
}

aws_credentials fake_credentials() {
  aws_credentials c;
  c.access_key_id = "mailroom-test";
  c.secret_access_key = secret_text{"mailroom-test"};
  return c;
}

sqs_settings settings_for(const elasticmq_server& s) {
  sqs_settings settings;
  settings.endpoint = s.endpoint();
  settings.region = "elasticmq";
  settings.http.connect_timeout = std::chrono::milliseconds{1000};
  settings.http.request_timeout = std::chrono::milliseconds{5000};
  return settings;
}

// Runs tests/support/sqs_client.py (boto3) with `args`; returns its JSON output.
nlohmann::json boto3(std::vector<std::string> args) {
  auto argv = sqs_client_argv();
  argv.insert(argv.end(), args.begin(), args.end());
  process_runner run{argv};
  int code = run.wait(std::chrono::seconds{60});
  BOOST_REQUIRE_MESSAGE(code == 0, "sqs_client.py " << args.front() << " exited " << code
                                                    << ": " << run.err());
  return nlohmann::json::parse(run.out());
}

sqs_receive_request receive_from(const std::string& url, int wait_s = 0, int max = 10) {
  sqs_receive_request r;
  r.queue_url = url;
  r.wait_time_s = wait_s;
  r.max_messages = max;
  return r;
}

sqs_send_request send_to(const std::string& url, std::string body) {
  sqs_send_request r;
  r.queue_url = url;
  r.body = std::move(body);
  return r;
}

// Receives until `count` messages came or a 1 s long poll brings none.
std::vector<sqs_message> drain(sqs_api& api, const std::string& url, std::size_t count) {
  std::vector<sqs_message> out;
  while (out.size() < count) {
    auto got = api.receive_message(receive_from(url, 1));
    BOOST_REQUIRE_MESSAGE(got, got.status.what);
    if (got.value.empty()) {
      break;
    }
    out.insert(out.end(), got.value.begin(), got.value.end());
  }
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(get_queue_url_and_attributes) {
  sqs_api api{settings_for(server()), fake_credentials()};
  auto url = api.get_queue_url("work");
  BOOST_REQUIRE_MESSAGE(url, url.status.what);
  BOOST_TEST(url.value == server().queue_url("work"));

  auto missing = api.get_queue_url("no-such-queue");
  BOOST_TEST(missing.status.failure == failure_class::fatal);
  BOOST_TEST(missing.error.code == "QueueDoesNotExist");
  BOOST_TEST(missing.error.http_status == 400);
  BOOST_TEST(missing.status.what.find("SQS GetQueueUrl: QueueDoesNotExist") == 0U);
  BOOST_TEST_MESSAGE("missing queue: " << missing.status.what);

  auto attributes = api.get_queue_attributes(url.value);
  BOOST_REQUIRE_MESSAGE(attributes, attributes.status.what);
  const auto& a = attributes.value;
  BOOST_TEST(a.approximate_number_of_messages == 0);
  BOOST_TEST(a.visibility_timeout_s == 30);
  BOOST_TEST(!a.fifo);
  BOOST_TEST(a.queue_arn.find(":work") != std::string::npos);
  BOOST_REQUIRE(a.redrive_policy.has_value());
  BOOST_TEST(a.redrive_policy->max_receive_count == 3);
  BOOST_TEST(a.redrive_policy->dead_letter_target_arn.find("work-dlq") != std::string::npos);
  BOOST_TEST_MESSAGE("RedrivePolicy as ElasticMQ writes it: " << a.all.at("RedrivePolicy"));

  auto fifo = api.get_queue_attributes(server().queue_url("jobs.fifo"), {"FifoQueue"});
  BOOST_REQUIRE_MESSAGE(fifo, fifo.status.what);
  BOOST_TEST(fifo.value.fifo);
  BOOST_TEST(fifo.value.all.size() == 1U);

  auto gone = api.get_queue_attributes(server().queue_url("no-such-queue"));
  BOOST_TEST(gone.status.failure == failure_class::fatal);
  BOOST_TEST(gone.error.code == "QueueDoesNotExist");
}

BOOST_AUTO_TEST_CASE(send_with_attributes_then_receive) {
  sqs_api api{settings_for(server()), fake_credentials()};
  auto url = server().queue_url("work");
  auto body = std::string{"h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x9A\x80 \"quoted\"\n\ttabbed"};
  auto send = send_to(url, body);
  send.attributes["trace"] = {"String", "abc-123", ""};
  send.attributes["attempt"] = {"Number", "7", ""};
  send.attributes["note"] = {"String", "\xC3\xBC", ""};
  auto before_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  auto sent = api.send_message(send);
  BOOST_REQUIRE_MESSAGE(sent, sent.status.what);
  BOOST_TEST(!sent.value.message_id.empty());

  // boto3 sees it visible before we receive it.
  BOOST_TEST(boto3({"count", url}).at("visible").get<int>() == 1);

  auto t = clock_type::now();
  auto got = api.receive_message(receive_from(url, 1));
  BOOST_TEST_MESSAGE("ReceiveMessage with one message: " << ms_since(t) << " ms");
  BOOST_REQUIRE_MESSAGE(got, got.status.what);
  BOOST_REQUIRE(got.value.size() == 1U);
  const auto& m = got.value.front();
  BOOST_TEST(m.message_id == sent.value.message_id);
  BOOST_TEST(m.body == body);
  BOOST_TEST(m.approximate_receive_count == 1);
  BOOST_TEST(m.sent_timestamp_ms >= before_ms - 1000);
  BOOST_TEST(m.sent_timestamp_ms <= before_ms + 5000);
  BOOST_TEST(!m.receipt_handle.empty());
  BOOST_REQUIRE(m.message_attributes.count("trace") == 1U);
  BOOST_TEST(m.message_attributes.at("trace").data_type == "String");
  BOOST_TEST(m.message_attributes.at("trace").string_value == "abc-123");
  BOOST_TEST(m.message_attributes.at("attempt").data_type == "Number");
  BOOST_TEST(m.message_attributes.at("attempt").string_value == "7");
  BOOST_TEST(m.message_attributes.at("note").string_value == "\xC3\xBC");
  std::string names;
  for (const auto& [name, value] : m.attributes) {
    names += name + " ";
  }
  BOOST_TEST_MESSAGE("system attributes returned: " << names);

  // In flight now: boto3 sees it not visible; delete it, then none is left.
  BOOST_TEST(boto3({"count", url}).at("not_visible").get<int>() == 1);
  auto deleted = api.delete_message_batch(url, {{"", m.receipt_handle}});
  BOOST_REQUIRE_MESSAGE(deleted, deleted.status.what);
  BOOST_TEST(deleted.value.failed() == 0U);
  auto left = boto3({"count", url});
  BOOST_TEST(left.at("visible").get<int>() == 0);
  BOOST_TEST(left.at("not_visible").get<int>() == 0);
}

BOOST_AUTO_TEST_CASE(receives_what_boto3_sent) {
  sqs_api api{settings_for(server()), fake_credentials()};
  auto url = server().queue_url("boto");
  auto id = boto3({"send", url, "from boto3 \xE2\x9C\x93"}).at("MessageId").get<std::string>();
  auto got = drain(api, url, 1);
  BOOST_REQUIRE(got.size() == 1U);
  BOOST_TEST(got[0].message_id == id);
  BOOST_TEST(got[0].body == "from boto3 \xE2\x9C\x93");
  BOOST_TEST(got[0].approximate_receive_count == 1);
  auto deleted = api.delete_message_batch(url, {{"only", got[0].receipt_handle}});
  BOOST_REQUIRE_MESSAGE(deleted, deleted.status.what);
  BOOST_TEST(deleted.value.entries.at(0).id == "only");
  BOOST_TEST(deleted.value.entries.at(0).ok);
}

BOOST_AUTO_TEST_CASE(long_poll_returns_when_a_message_arrives) {
  sqs_api api{settings_for(server()), fake_credentials()};
  auto url = server().queue_url("poll");

  // An empty queue: a 1 s long poll waits its second and brings nothing.
  auto t = clock_type::now();
  auto empty = api.receive_message(receive_from(url, 1));
  auto empty_ms = ms_since(t);
  BOOST_REQUIRE_MESSAGE(empty, empty.status.what);
  BOOST_TEST(empty.value.empty());
  BOOST_TEST(empty_ms >= 900.0);
  BOOST_TEST_MESSAGE("empty 1 s long poll: " << empty_ms << " ms");

  // A 20 s long poll; a message sent from another thread (its own client:
  // one per thread) after 1 s ends it early.
  std::thread producer{[] {
    std::this_thread::sleep_for(std::chrono::seconds{1});
    sqs_api other{settings_for(server()), fake_credentials()};
    auto sent = other.send_message(send_to(server().queue_url("poll"), "wake up"));
    BOOST_TEST(static_cast<bool>(sent));
  }};
  t = clock_type::now();
  auto woken = api.receive_message(receive_from(url, 20));
  auto woken_ms = ms_since(t);
  producer.join();
  BOOST_REQUIRE_MESSAGE(woken, woken.status.what);
  BOOST_REQUIRE(woken.value.size() == 1U);
  BOOST_TEST(woken.value[0].body == "wake up");
  BOOST_TEST(woken_ms >= 900.0);
  BOOST_TEST(woken_ms < 10000.0);
  std::cout << "long poll (WaitTimeSeconds 20) ended by a send after 1 s: " << woken_ms
            << " ms\n";
  auto deleted = api.delete_message_batch(url, {{"", woken.value[0].receipt_handle}});
  BOOST_TEST(static_cast<bool>(deleted));
}

BOOST_AUTO_TEST_CASE(changed_visibility_makes_a_message_reappear) {
  sqs_api api{settings_for(server()), fake_credentials()};
  auto url = server().queue_url("visibility");
  BOOST_REQUIRE(api.send_message(send_to(url, "again")));
  BOOST_REQUIRE(api.send_message(send_to(url, "and again")));
  auto receive = receive_from(url, 1);
  receive.visibility_timeout_s = 60;
  auto first = api.receive_message(receive);
  BOOST_REQUIRE_MESSAGE(first, first.status.what);
  // ElasticMQ may hand out fewer than asked: collect both.
  auto messages = first.value;
  while (messages.size() < 2U) {
    auto more = api.receive_message(receive);
    BOOST_REQUIRE(more && !more.value.empty());
    messages.insert(messages.end(), more.value.begin(), more.value.end());
  }
  // Nothing visible while both are in flight for 60 s.
  auto none = api.receive_message(receive_from(url, 0));
  BOOST_REQUIRE(none);
  BOOST_TEST(none.value.empty());

  // One at a time: visible at once.
  auto changed = api.change_message_visibility(url, messages[0].receipt_handle, 0);
  BOOST_REQUIRE_MESSAGE(changed, changed.status.what);
  auto back = drain(api, url, 1);
  BOOST_REQUIRE(back.size() == 1U);
  BOOST_TEST(back[0].message_id == messages[0].message_id);
  BOOST_TEST(back[0].approximate_receive_count == 2);

  // A batch: the two live handles (message 0 is in flight again since its
  // second receive) and a bogus one.
  auto batch = api.change_message_visibility_batch(url, {{"first", back[0].receipt_handle, 0},
                                                         {"bogus", "not-a-receipt-handle", 0},
                                                         {"second", messages[1].receipt_handle, 0}});
  BOOST_REQUIRE_MESSAGE(batch, batch.status.what);
  BOOST_REQUIRE(batch.value.entries.size() == 3U);
  BOOST_TEST(batch.value.entries[0].id == "first");
  BOOST_TEST(batch.value.entries[0].ok);
  BOOST_TEST(batch.value.entries[1].id == "bogus");
  BOOST_TEST(!batch.value.entries[1].ok);
  BOOST_TEST(batch.value.entries[1].code == "ReceiptHandleIsInvalid");
  BOOST_TEST(batch.value.entries[2].id == "second");
  BOOST_TEST(batch.value.entries[2].ok);
  BOOST_TEST(batch.value.failed() == 1U);
  auto both = drain(api, url, 2);
  BOOST_TEST(both.size() == 2U);

  // ElasticMQ honours only the latest receipt handle: the first one is stale.
  auto stale = api.change_message_visibility(url, messages[0].receipt_handle, 0);
  BOOST_TEST(stale.status.failure == failure_class::fatal);
  BOOST_TEST(stale.error.code == "ReceiptHandleIsInvalid");
  std::vector<sqs_delete_entry> cleanup;
  for (const auto& m : both) {
    cleanup.push_back({"", m.receipt_handle});
  }
  auto deleted = api.delete_message_batch(url, cleanup);
  BOOST_TEST(static_cast<bool>(deleted));
}

BOOST_AUTO_TEST_CASE(delete_batch_reports_each_entry) {
  sqs_api api{settings_for(server()), fake_credentials()};
  auto url = server().queue_url("batch");
  BOOST_REQUIRE(api.send_message(send_to(url, "delete me")));
  auto got = drain(api, url, 1);
  BOOST_REQUIRE(got.size() == 1U);
  auto deleted = api.delete_message_batch(
      url, {{"good", got[0].receipt_handle}, {"bogus", "bogus-receipt-handle"}});
  BOOST_REQUIRE_MESSAGE(deleted, deleted.status.what);
  BOOST_REQUIRE(deleted.value.entries.size() == 2U);
  BOOST_TEST(deleted.value.entries[0].ok);
  BOOST_TEST(!deleted.value.entries[1].ok);
  BOOST_TEST(deleted.value.entries[1].code == "ReceiptHandleIsInvalid");
  BOOST_TEST(deleted.value.failed() == 1U);
  BOOST_TEST_MESSAGE("bogus delete entry: " << deleted.value.entries[1].code << ": "
                                            << deleted.value.entries[1].message
                                            << " sender_fault="
                                            << deleted.value.entries[1].sender_fault);
  // boto3 confirms the good one is gone.
  auto left = boto3({"count", url});
  BOOST_TEST(left.at("visible").get<int>() == 0);
  BOOST_TEST(left.at("not_visible").get<int>() == 0);
}

BOOST_AUTO_TEST_CASE(fifo_send_with_group_id) {
  sqs_api api{settings_for(server()), fake_credentials()};
  auto url = server().queue_url("jobs.fifo");
  for (int i = 0; i < 3; ++i) {
    auto send = send_to(url, "job-" + std::to_string(i));
    send.group_id = "g1";
    send.deduplication_id = "dedup-" + std::to_string(i);
    auto sent = api.send_message(send);
    BOOST_REQUIRE_MESSAGE(sent, sent.status.what);
    BOOST_TEST(!sent.value.sequence_number.empty());
  }
  // The same deduplication id again is dropped by the queue (not an error).
  auto again = send_to(url, "job-0 again");
  again.group_id = "g1";
  again.deduplication_id = "dedup-0";
  BOOST_TEST(static_cast<bool>(api.send_message(again)));
  // Without a group id a FIFO queue refuses the message: fatal.
  auto no_group = api.send_message(send_to(url, "orphan"));
  BOOST_TEST(no_group.status.failure == failure_class::fatal);
  BOOST_TEST_MESSAGE("FIFO send without group: " << no_group.status.what);

  // boto3 receives them, in order, with their group.
  auto jobs = boto3({"receive", url, "--max", "10", "--wait", "1", "--delete"});
  BOOST_REQUIRE(jobs.size() == 3U);
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(jobs[i].at("Body").get<std::string>() == "job-" + std::to_string(i));
    BOOST_TEST(jobs[i].at("GroupId").get<std::string>() == "g1");
  }

  // Our receive reports the group, the dedup id and the sequence number.
  auto send = send_to(url, "ours");
  send.group_id = "g2";
  auto sent = api.send_message(send); // content-based deduplication
  BOOST_REQUIRE_MESSAGE(sent, sent.status.what);
  auto got = drain(api, url, 1);
  BOOST_REQUIRE(got.size() == 1U);
  BOOST_TEST(got[0].message_group_id == "g2");
  BOOST_TEST(!got[0].message_deduplication_id.empty());
  BOOST_TEST(got[0].sequence_number == sent.value.sequence_number);
  BOOST_TEST(static_cast<bool>(api.delete_message_batch(url, {{"", got[0].receipt_handle}})));
}

BOOST_AUTO_TEST_CASE(one_connection_serves_many_calls) {
  sqs_api api{settings_for(server()), fake_credentials()};
  auto url = server().queue_url("reuse");
  constexpr int calls = 100;
  std::vector<double> receive_ms, send_ms;
  for (int i = 0; i < calls; ++i) {
    auto t = clock_type::now();
    BOOST_REQUIRE(api.send_message(send_to(url, "m" + std::to_string(i))));
    send_ms.push_back(ms_since(t));
    t = clock_type::now();
    auto got = api.receive_message(receive_from(url, 0, 1));
    receive_ms.push_back(ms_since(t));
    BOOST_REQUIRE_MESSAGE(got, got.status.what);
    if (!got.value.empty()) {
      BOOST_REQUIRE(api.delete_message_batch(url, {{"", got.value[0].receipt_handle}}));
    }
  }
  BOOST_TEST(api.http().connections_opened() == 1U);
  BOOST_TEST(api.http().calls() >= 2U * calls);
  auto report = [](const char* what, std::vector<double> v) {
    std::sort(v.begin(), v.end());
    double sum = 0;
    for (double x : v) {
      sum += x;
    }
    std::cout << what << " round trip on ElasticMQ over " << v.size()
              << " calls: mean " << sum / static_cast<double>(v.size()) << " ms, p50 "
              << v[v.size() / 2] << " ms, p99 " << v[v.size() * 99 / 100] << " ms, max "
              << v.back() << " ms\n";
  };
  report("SendMessage", send_ms);
  report("ReceiveMessage (1 message, WaitTimeSeconds 0)", receive_ms);
  std::cout << "connections opened for " << api.http().calls()
            << " calls: " << api.http().connections_opened() << "\n";
}

BOOST_AUTO_TEST_CASE(outage_is_transient_and_the_same_client_recovers) {
  elasticmq_server own{{[] {
    elasticmq_server::queue q;
    q.name = "outage";
    return q;
  }()}};
  auto settings = settings_for(own);
  settings.http.request_timeout = std::chrono::milliseconds{1500};
  sqs_api api{settings, fake_credentials()};
  auto url = own.queue_url("outage");
  BOOST_REQUIRE(api.send_message(send_to(url, "before")));
  BOOST_TEST(api.http().connections_opened() == 1U);

  // Stopped: refused at once, transient.
  own.stop();
  auto t = clock_type::now();
  auto down = api.send_message(send_to(url, "while down"));
  auto down_ms = ms_since(t);
  BOOST_TEST(down.status.failure == failure_class::transient);
  BOOST_TEST(!down.error.present());
  std::cout << "call to a stopped server: " << down.status.what << " after " << down_ms
            << " ms\n";

  // Restarted (empty, same port): the same client works again.
  own.restart();
  auto back = api.send_message(send_to(url, "after"));
  BOOST_REQUIRE_MESSAGE(back, back.status.what);
  auto got = api.receive_message(receive_from(url, 1));
  BOOST_REQUIRE(got);
  BOOST_REQUIRE(got.value.size() == 1U);
  BOOST_TEST(got.value[0].body == "after");
  std::cout << "connections opened across the restart: " << api.http().connections_opened()
            << "\n";

  // Frozen (SIGSTOP): the request times out, transient, within its bound.
  own.pause();
  t = clock_type::now();
  auto frozen = api.get_queue_url("outage");
  auto frozen_ms = ms_since(t);
  own.resume();
  BOOST_TEST(frozen.status.failure == failure_class::transient);
  BOOST_TEST(frozen_ms < 3000.0);
  std::cout << "call to a frozen server: " << frozen.status.what << " after " << frozen_ms
            << " ms\n";
  auto thawed = api.get_queue_url("outage");
  BOOST_TEST_MESSAGE("after SIGCONT: " << (thawed ? "answered" : thawed.status.what));
  BOOST_TEST(static_cast<bool>(thawed));
}
