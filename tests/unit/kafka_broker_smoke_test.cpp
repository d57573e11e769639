#define BOOST_TEST_MODULE kafka_broker_smoke
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "tests/support/kafka_broker.hpp"
#include "tests/support/process_runner.hpp"

using mailroom::testing::kafka_broker;
using mailroom::testing::process_runner;

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point begin) {
  return std::chrono::duration<double>(clock_type::now() - begin).count();
}

// Produces the lines of a file, `key:value` each, to `topic` with kcat.
void produce(const kafka_broker& broker, const std::string& topic,
             const std::vector<std::string>& lines) {
  auto path = "/tmp/mailroom-kafka-smoke-" + std::to_string(::getpid()) + ".txt";
  {
    std::ofstream out{path, std::ios::trunc};
    for (const auto& line : lines) {
      out << line << "\n";
    }
  }
  process_runner run{{broker.kcat(), "-P", "-b", broker.bootstrap(), "-t", topic, "-K:",
                      "-l", path, "-X", "acks=all"}};
  int code = run.wait(std::chrono::seconds{60});
  ::unlink(path.c_str());
  BOOST_REQUIRE_MESSAGE(code == 0, "kcat -P exited " << code << ": " << run.err()
                                                     << "\nbroker log:\n"
                                                     << broker.log());
}

// Consumes `topic` in consumer group `group` until every assigned partition is
// at its end (at most `max` messages); returns "partition value" lines.
std::vector<std::string> consume(const kafka_broker& broker, const std::string& topic,
                                 const std::string& group, int max) {
  process_runner run{{broker.kcat(), "-b", broker.bootstrap(), "-G", group, "-e", "-q",
                      "-c", std::to_string(max), "-f", "%p %s\\n", "-X",
                      "auto.offset.reset=earliest", topic}};
  int code = run.wait(std::chrono::seconds{90});
  BOOST_REQUIRE_MESSAGE(code == 0, "kcat -G exited " << code << ": " << run.err()
                                                     << "\nbroker log:\n"
                                                     << broker.log());
  std::vector<std::string> lines;
  std::istringstream in{run.out()};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) {
      lines.push_back(line);
    }
  }
  return lines;
}

// Returns kcat's metadata listing of `topic`.
std::string metadata(const kafka_broker& broker, const std::string& topic) {
  process_runner run{{broker.kcat(), "-b", broker.bootstrap(), "-L", "-t", topic}};
  int code = run.wait(std::chrono::seconds{30});
  BOOST_REQUIRE_MESSAGE(code == 0, "kcat -L exited " << code << ": " << run.err());
  return run.out();
}

} // namespace

BOOST_AUTO_TEST_CASE(produces_consumes_in_a_group_and_restarts) {
  auto begin = clock_type::now();
  kafka_broker broker;
  BOOST_TEST_MESSAGE("broker up at " << broker.bootstrap() << " in "
                                     << broker.start_time().count() << " ms");
  BOOST_TEST(broker.bootstrap() == "127.0.0.1:" + std::to_string(broker.port()));
  BOOST_TEST(broker.port() != broker.controller_port());

  auto t = clock_type::now();
  broker.create_topic("smoke", 3);
  BOOST_TEST_MESSAGE("create_topic in " << seconds_since(t) << " s");
  auto listing = metadata(broker, "smoke");
  BOOST_TEST(listing.find("topic \"smoke\" with 3 partitions") != std::string::npos,
             listing);

  // 30 keyed messages spread over the partitions.
  std::vector<std::string> lines;
  std::set<std::string> sent;
  for (int i = 0; i < 30; ++i) {
    lines.push_back("key-" + std::to_string(i) + ":message-" + std::to_string(i));
    sent.insert("message-" + std::to_string(i));
  }
  produce(broker, "smoke", lines);

  t = clock_type::now();
  auto got = consume(broker, "smoke", "smoke-group", 30);
  BOOST_TEST_MESSAGE("consumed " << got.size() << " in " << seconds_since(t) << " s");
  std::set<std::string> received;
  std::map<std::string, int> per_partition;
  for (const auto& line : got) {
    auto space = line.find(' ');
    BOOST_REQUIRE_MESSAGE(space != std::string::npos, "odd kcat line: " << line);
    ++per_partition[line.substr(0, space)];
    received.insert(line.substr(space + 1));
  }
  BOOST_TEST(got.size() == 30U);
  BOOST_TEST(received == sent);
  BOOST_TEST(per_partition.size() > 1U); // the keys spread over the 3 partitions
  for (const auto& [partition, count] : per_partition) {
    BOOST_TEST((partition == "0" || partition == "1" || partition == "2"), partition);
  }

  // A restart keeps the ports, the topic and the group's committed offsets:
  // the group reads only what came after.
  broker.restart();
  BOOST_TEST_MESSAGE("restart in " << broker.start_time().count() << " ms");
  BOOST_TEST(broker.serves());
  produce(broker, "smoke", {"key-after:after-restart"});
  auto after = consume(broker, "smoke", "smoke-group", 30);
  BOOST_TEST(after.size() == 1U);
  BOOST_TEST((after.size() == 1U && after[0].substr(after[0].find(' ') + 1) ==
                                         "after-restart"));

  // SIGKILL, then a restart on the same data: the topic is still there.
  broker.kill();
  BOOST_TEST(!broker.serves());
  broker.restart();
  BOOST_TEST_MESSAGE("restart after kill in " << broker.start_time().count() << " ms");
  listing = metadata(broker, "smoke");
  BOOST_TEST(listing.find("topic \"smoke\" with 3 partitions") != std::string::npos,
             listing);
  BOOST_TEST_MESSAGE("whole test in " << seconds_since(begin) << " s");
}
