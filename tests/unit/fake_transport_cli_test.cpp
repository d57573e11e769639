#define BOOST_TEST_MODULE fake_transport_cli
#include <boost/test/unit_test.hpp>

// A transport registered by a program of its own (tests/fake_transport) runs
// under `mailroom run` with its own config section, validate output and
// summary rows: nothing else in the tree had to change for it.

#include <string>

#include "tests/support/process_runner.hpp"

using namespace mailroom::testing;
using namespace std::chrono_literals;

namespace {

const std::string binary = MAILROOM_FAKE_TRANSPORT_BINARY;
const std::string config = std::string{MAILROOM_SOURCE_DIR} + "/config/default.toml";

std::vector<std::string> args(const char* command, std::vector<std::string> sets) {
  // default.toml says source.type = "generator", which feeds memory only.
  std::vector<std::string> a{binary, command, "--config", config, "--set",
                             "transport.type=fake", "--set", "source.type=none"};
  for (auto& s : sets) {
    a.push_back("--set");
    a.push_back(s);
  }
  return a;
}

} // namespace

BOOST_AUTO_TEST_CASE(a_registered_transport_runs_with_its_own_section_and_stats) {
  process_runner p{args("run", {"transport.fake.messages=250", "log.level=warn"})};
  BOOST_REQUIRE(p.wait(30s) == 0);
  auto out = p.out();
  BOOST_TEST(summary_value(out, "deliveries polled") == 250);
  BOOST_TEST(summary_value(out, "acked") == 250);
  BOOST_TEST(summary_value(out, "fake acked") == 250);
  BOOST_TEST(summary_value(out, "fake polls") >= 1);
}

BOOST_AUTO_TEST_CASE(its_section_is_validated_and_rendered_with_secrets_redacted) {
  process_runner v{args("validate", {"transport.fake.prefix=order"})};
  BOOST_REQUIRE(v.wait(10s) == 0);
  auto out = v.out();
  BOOST_TEST(out.find("[transport.fake]\nmessages = 10\nprefix = \"order\"\n") !=
             std::string::npos,
             out);
  BOOST_TEST(out.find("api_secret = \"<redacted>\"") != std::string::npos);
  BOOST_TEST(out.find("hidden") == std::string::npos);
  BOOST_TEST(out.find("type = \"fake\"") != std::string::npos);

  process_runner typo{args("validate", {"transport.fake.mesages=3"})};
  BOOST_TEST(typo.wait(10s) == 2);
  BOOST_TEST(typo.err().find("transport.fake.mesages: unknown key (did you mean "
                             "\"messages\"?)") != std::string::npos,
             typo.err());
  process_runner bad{args("validate", {"transport.fake.messages=-1"})};
  BOOST_TEST(bad.wait(10s) == 2);
  BOOST_TEST(bad.err().find("transport.fake.messages: expected integer in 0..1000000") !=
             std::string::npos,
             bad.err());
  process_runner empty{args("validate", {"transport.fake.prefix=\"\""})};
  BOOST_TEST(empty.wait(10s) == 2);
  BOOST_TEST(empty.err().find("transport.fake.prefix: expected a non-empty prefix") !=
             std::string::npos,
             empty.err());
  // The generator feeds only the memory transport.
  process_runner gen{args("validate", {"source.type=generator"})};
  BOOST_TEST(gen.wait(10s) == 2);
  BOOST_TEST(gen.err().find("source.type") != std::string::npos);
}
