#define BOOST_TEST_MODULE elasticmq_smoke
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/elasticmq_server.hpp"
#include "tests/support/process_runner.hpp"

using mailroom::testing::elasticmq_server;
using mailroom::testing::process_runner;
using mailroom::testing::sqs_client_argv;

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point begin) {
  return std::chrono::duration<double>(clock_type::now() - begin).count();
}

// Runs tests/support/sqs_client.py with `args`; returns its JSON output.
nlohmann::json sqs(const elasticmq_server& server, std::vector<std::string> args) {
  auto argv = sqs_client_argv();
  argv.insert(argv.end(), args.begin(), args.end());
  process_runner run{argv};
  int code = run.wait(std::chrono::seconds{60});
  BOOST_REQUIRE_MESSAGE(code == 0, "sqs_client.py " << args.front() << " exited " << code
                                                    << ": " << run.err()
                                                    << "\nserver log:\n"
                                                    << server.log());
  auto parsed = nlohmann::json::parse(run.out(), nullptr, false);
  BOOST_REQUIRE_MESSAGE(!parsed.is_discarded(), "not JSON: " << run.out());
  return parsed;
}

long long visible(const elasticmq_server& server, const std::string& queue) {
  return sqs(server, {"count", server.queue_url(queue)}).at("visible").get<long long>();
}

std::vector<elasticmq_server::queue> smoke_queues() {
  elasticmq_server::queue work;
  work.name = "work";
  work.visibility_timeout_s = 1;
  work.dead_letter_queue = "work-dlq";
  work.max_receive_count = 1;
  elasticmq_server::queue jobs;
  jobs.name = "jobs.fifo";
  jobs.fifo = true;
  elasticmq_server::queue dlq;
  dlq.name = "work-dlq";
  return {work, jobs, dlq};
}

} // namespace

BOOST_AUTO_TEST_CASE(sends_receives_dead_letters_and_restarts) {
  auto begin = clock_type::now();
  elasticmq_server server{smoke_queues()};
  BOOST_TEST_MESSAGE("ElasticMQ up at " << server.endpoint() << " in "
                                        << server.start_time().count() << " ms");
  BOOST_TEST(server.queue_url("work") == server.endpoint() + "/000000000000/work");

  // The raw JSON protocol: every declared queue is listed.
  auto listed = server.call("ListQueues");
  BOOST_REQUIRE(listed.has_value());
  BOOST_TEST(listed->status == 200);
  auto urls = nlohmann::json::parse(listed->body, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!urls.is_discarded(), listed->body);
  std::set<std::string> got_urls;
  for (const auto& url : urls.at("QueueUrls")) {
    got_urls.insert(url.get<std::string>());
  }
  BOOST_TEST((got_urls == std::set<std::string>{server.queue_url("work"),
                                                server.queue_url("jobs.fifo"),
                                                server.queue_url("work-dlq")}));

  // A standard queue: 5 sent, 5 visible, 5 received and deleted, none left.
  auto t = clock_type::now();
  std::set<std::string> sent;
  for (int i = 0; i < 5; ++i) {
    auto body = "message-" + std::to_string(i);
    auto reply = sqs(server, {"send", server.queue_url("work"), body});
    BOOST_TEST(!reply.at("MessageId").get<std::string>().empty());
    sent.insert(body);
  }
  BOOST_TEST(visible(server, "work") == 5);
  auto received = sqs(server, {"receive", server.queue_url("work"), "--max", "10",
                               "--wait", "1", "--delete"});
  std::set<std::string> bodies;
  for (const auto& m : received) {
    bodies.insert(m.at("Body").get<std::string>());
  }
  BOOST_TEST(received.size() == 5U);
  BOOST_TEST(bodies == sent);
  auto left = sqs(server, {"count", server.queue_url("work")});
  BOOST_TEST(left.at("visible").get<int>() == 0);
  BOOST_TEST(left.at("not_visible").get<int>() == 0);
  BOOST_TEST_MESSAGE("standard queue round trip in " << seconds_since(t) << " s");

  // A FIFO queue keeps the order within a group.
  for (int i = 0; i < 5; ++i) {
    sqs(server, {"send", server.queue_url("jobs.fifo"), "job-" + std::to_string(i),
                 "--group", "g1"});
  }
  auto jobs = sqs(server, {"receive", server.queue_url("jobs.fifo"), "--max", "10",
                           "--wait", "1", "--delete"});
  BOOST_REQUIRE(jobs.size() == 5U);
  for (int i = 0; i < 5; ++i) {
    BOOST_TEST(jobs[i].at("Body").get<std::string>() == "job-" + std::to_string(i));
    BOOST_TEST(jobs[i].at("GroupId").get<std::string>() == "g1");
  }

  // Dead letters: received once (maxReceiveCount 1) and not deleted, the
  // message goes to work-dlq once its visibility timeout (1 s) ends.
  sqs(server, {"send", server.queue_url("work"), "poison"});
  auto first = sqs(server, {"receive", server.queue_url("work"), "--max", "1"});
  BOOST_REQUIRE(first.size() == 1U);
  BOOST_TEST(first[0].at("ReceiveCount").get<int>() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds{1500});
  auto again = sqs(server, {"receive", server.queue_url("work"), "--max", "1", "--wait",
                            "1"});
  BOOST_TEST(again.size() == 0U);
  BOOST_TEST(visible(server, "work-dlq") == 1);
  auto dead = sqs(server, {"receive", server.queue_url("work-dlq"), "--max", "1",
                           "--delete"});
  BOOST_REQUIRE(dead.size() == 1U);
  BOOST_TEST(dead[0].at("Body").get<std::string>() == "poison");

  // A restart keeps the port and the declared queues, emptied; a kill too.
  sqs(server, {"send", server.queue_url("work"), "lost"});
  auto port = server.port();
  server.restart();
  BOOST_TEST_MESSAGE("restart in " << server.start_time().count() << " ms");
  BOOST_TEST(server.port() == port);
  BOOST_TEST(server.serves());
  BOOST_TEST(visible(server, "work") == 0);
  server.kill();
  BOOST_TEST(!server.serves());
  server.restart();
  BOOST_TEST(server.serves());
  sqs(server, {"send", server.queue_url("work"), "after"});
  BOOST_TEST(visible(server, "work") == 1);
  BOOST_TEST_MESSAGE("whole test in " << seconds_since(begin) << " s");
}
