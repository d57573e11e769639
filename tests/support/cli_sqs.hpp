#pragma once

// Test support for the suites that run `mailroom` as an SQS consumer: one
// ElasticMQ server for the executable, queues on it, a client of it (the
// project's own sqs_api) and boto3 as the independent one, and the command
// line of a deployment (config/sqs.toml). Include after Boost.Test.

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "clients/aws/sqs_api.hpp"
#include "tests/support/elasticmq_server.hpp"
#include "tests/support/process_runner.hpp"

namespace mailroom::testing {

inline elasticmq_server& server() {
  static elasticmq_server instance{{}};
  return instance;
}

// ElasticMQ checks no signature, but the command needs credentials to sign.
struct fake_credentials_in_env {
  fake_credentials_in_env() {
    ::setenv("AWS_ACCESS_KEY_ID", "mailroom-test", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "mailroom-test", 1);
  }
};

inline std::string unique_name(const std::string& stem) {
  static int n = 0;
  return stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

/// Creates queue `name` with `attributes` (a name ending in ".fifo" is
/// created FIFO, content-deduplicated) and returns its URL.
inline std::string create_queue(const std::string& name, int visibility_s = 30,
                                nlohmann::json attributes = nlohmann::json::object()) {
  attributes["VisibilityTimeout"] = std::to_string(visibility_s);
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

/// A client of `own` (any credentials do).
inline sqs_api client_of(const elasticmq_server& own) {
  sqs_settings s;
  s.endpoint = own.endpoint();
  s.region = "elasticmq";
  aws_credentials c;
  c.access_key_id = "mailroom-test";
  c.secret_access_key = secret_text{"mailroom-test"};
  return sqs_api{s, c};
}

inline sqs_api client() { return client_of(server()); }

inline void send_all(const std::string& url, const std::vector<std::string>& bodies) {
  auto api = client();
  for (const auto& body : bodies) {
    sqs_send_request r;
    r.queue_url = url;
    r.body = body;
    auto sent = api.send_message(r);
    BOOST_REQUIRE_MESSAGE(sent, sent.status.what);
  }
}

/// Visible, in flight and delayed messages of the queue on `own`; -1 while
/// the server does not answer.
inline std::int64_t held_by(const elasticmq_server& own, const std::string& url) {
  auto api = client_of(own);
  auto a = api.get_queue_attributes(url);
  if (!a) {
    return -1;
  }
  return a.value.approximate_number_of_messages +
         a.value.approximate_number_of_messages_not_visible +
         a.value.approximate_number_of_messages_delayed;
}

/// The same on the suite's server, which must answer.
inline std::int64_t held_by(const std::string& url) {
  auto held = held_by(server(), url);
  BOOST_REQUIRE_MESSAGE(held >= 0, "GetQueueAttributes of " << url << " failed");
  return held;
}

/// What tests/support/sqs_client.py prints for `args`.
inline nlohmann::json boto3(std::vector<std::string> args) {
  using namespace std::chrono_literals;
  auto argv = sqs_client_argv();
  argv.insert(argv.end(), args.begin(), args.end());
  process_runner run{argv};
  int code = run.wait(60s);
  BOOST_REQUIRE_MESSAGE(code == 0, "sqs_client.py exited " << code << ": " << run.err());
  return nlohmann::json::parse(run.out());
}

/// `mailroom <command> --config config/sqs.toml` on the test server: queue
/// `url`, dead-letters to `dlq`, the stores in memory, then `sets`.
inline std::vector<std::string> sqs_run(const std::string& url, const std::string& dlq,
                                        std::vector<std::string> sets,
                                        const char* command = "run") {
  std::vector<std::string> args{MAILROOM_BINARY, command, "--config",
                                std::string{MAILROOM_SOURCE_DIR} + "/config/sqs.toml"};
  std::vector<std::string> base{"transport.sqs.queue_url=\"" + url + "\"",
                                "transport.sqs.dlq_queue_url=\"" + dlq + "\"",
                                "transport.sqs.endpoint_url=\"" + server().endpoint() + "\"",
                                "transport.sqs.region=\"elasticmq\"",
                                "transport.sqs.wait_time_s=1",
                                "transport.sqs.key_attribute=\"\"",
                                "progress.enabled=false",
                                "log.level=\"info\"",
                                "dedupe.store=\"memory\"",
                                "sweeper.store=\"memory\"",
                                "retry.base_ms=10",
                                "retry.cap_ms=50",
                                "engine.handler_timeout_ms=5000",
                                "engine.drain_timeout_ms=5000"};
  base.insert(base.end(), sets.begin(), sets.end());
  for (auto& s : base) {
    args.push_back("--set");
    args.push_back(std::move(s));
  }
  return args;
}

} // namespace mailroom::testing
