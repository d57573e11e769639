#define BOOST_TEST_MODULE logging
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "app/json_log_formatter.hpp"
#include "app/logging.hpp"

using nlohmann::json;

namespace {

// Formats one record with a fresh json_log_formatter.
std::string format_one(spdlog::level::level_enum level, const std::string& text,
                       std::chrono::milliseconds since_epoch = std::chrono::milliseconds{
                           1795402103123}) {
  spdlog::details::log_msg msg(spdlog::source_loc{}, "orders", level, text);
  msg.time = spdlog::log_clock::time_point(since_epoch);
  mailroom::json_log_formatter f;
  spdlog::memory_buf_t buf;
  f.format(msg, buf);
  return std::string(buf.data(), buf.size());
}

std::string invalid_argument_text(const std::string& level, const std::string& format) {
  try {
    mailroom::configure_logging(level, format);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

// Runs `fn` with stderr redirected to a file and returns what it wrote.
template <class Fn> std::string capture_stderr(Fn fn) {
  char path[] = "/tmp/mailroom_log_XXXXXX";
  int fd = ::mkstemp(path);
  std::fflush(stderr);
  int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  fn();
  std::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  ::unlink(path);
  return ss.str();
}

struct env_guard {
  env_guard() { ::unsetenv("MAILROOM_LOG_LEVEL"); }
  ~env_guard() { ::unsetenv("MAILROOM_LOG_LEVEL"); }
};

} // namespace

BOOST_AUTO_TEST_CASE(formats_one_json_object_per_line) {
  auto line = format_one(spdlog::level::info, "started");
  BOOST_TEST(line ==
             R"({"time":"2026-11-23T02:48:23.123Z","level":"info","logger":"orders",)"
             R"("msg":"started"})"
             "\n");
}

BOOST_AUTO_TEST_CASE(escapes_quotes_newlines_and_control_characters) {
  const std::string text = "he said \"hi\"\nand left\\ \t\x01 caf\xc3\xa9 \xe2\x82\xac";
  auto line = format_one(spdlog::level::warn, text);
  BOOST_TEST(line.back() == '\n');
  BOOST_TEST(line.find('\n') == line.size() - 1); // the message's newline is escaped
  BOOST_TEST(line.find("\\\"hi\\\"\\nand") != std::string::npos);
  BOOST_TEST(line.find("\\u0001") != std::string::npos);
  auto doc = json::parse(line);
  BOOST_TEST(doc["msg"] == text);
  BOOST_TEST(doc["level"] == "warn");
  BOOST_TEST(doc.size() == 4u);
}

BOOST_AUTO_TEST_CASE(invalid_utf8_still_gives_valid_json) {
  const std::string text = "bad \xff byte, cut \xe2\x82, surrogate \xed\xa0\x80 end";
  auto doc = json::parse(format_one(spdlog::level::err, text));
  BOOST_TEST(doc["level"] == "error");
  BOOST_TEST(doc["msg"] ==
             "bad \xef\xbf\xbd byte, cut \xef\xbf\xbd\xef\xbf\xbd, surrogate "
             "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
}

BOOST_AUTO_TEST_CASE(pads_milliseconds_and_names_every_level) {
  auto doc =
      json::parse(format_one(spdlog::level::critical, "x", std::chrono::milliseconds{7}));
  BOOST_TEST(doc["time"] == "1970-01-01T00:00:00.007Z");
  BOOST_TEST(doc["level"] == "critical");
  BOOST_TEST(json::parse(format_one(spdlog::level::trace, ""))["level"] == "trace");
  BOOST_TEST(json::parse(format_one(spdlog::level::debug, ""))["level"] == "debug");
}

BOOST_AUTO_TEST_CASE(works_as_a_sink_formatter_and_clones) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("test", sink);
  mailroom::json_log_formatter prototype;
  logger.set_formatter(prototype.clone());
  logger.info("payload {} of {}", "\"quoted\"", 3);
  logger.info("second");
  std::istringstream lines(out.str());
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  BOOST_TEST(json::parse(first)["msg"] == "payload \"quoted\" of 3");
  BOOST_TEST(json::parse(first)["logger"] == "test");
  BOOST_TEST(json::parse(second)["msg"] == "second");
}

BOOST_AUTO_TEST_CASE(configure_logging_json_writes_json_lines_to_stderr) {
  env_guard env;
  auto text = capture_stderr([] {
    mailroom::configure_logging("info", "json");
    spdlog::info("line \"one\"\nstill one");
    spdlog::debug("hidden at info");
  });
  BOOST_TEST(text.find('\n') == text.size() - 1);
  auto doc = json::parse(text);
  BOOST_TEST(doc["msg"] == "line \"one\"\nstill one");
  BOOST_TEST(doc["logger"] == "mailroom");
  BOOST_TEST(doc["level"] == "info");
}

BOOST_AUTO_TEST_CASE(configure_logging_text_and_levels) {
  env_guard env;
  mailroom::configure_logging("debug", "text");
  BOOST_TEST(spdlog::default_logger()->name() == "mailroom");
  BOOST_TEST((spdlog::default_logger()->level() == spdlog::level::debug));
  auto text = capture_stderr([] { spdlog::warn("careful"); });
  BOOST_TEST(text.find("careful") != std::string::npos);
  BOOST_TEST(text.find("warning") != std::string::npos);
  mailroom::configure_logging("off", "text"); // reconfiguring is allowed
  BOOST_TEST((spdlog::default_logger()->level() == spdlog::level::off));
}

BOOST_AUTO_TEST_CASE(environment_overrides_configured_level) {
  env_guard env;
  ::setenv("MAILROOM_LOG_LEVEL", "error", 1);
  mailroom::configure_logging("info", "json");
  BOOST_TEST((spdlog::default_logger()->level() == spdlog::level::err));
  ::setenv("MAILROOM_LOG_LEVEL", "", 1); // empty means unset
  mailroom::configure_logging("trace", "json");
  BOOST_TEST((spdlog::default_logger()->level() == spdlog::level::trace));
  ::setenv("MAILROOM_LOG_LEVEL", "loud", 1);
  BOOST_TEST(
      invalid_argument_text("info", "json") ==
      "MAILROOM_LOG_LEVEL: expected one of trace, debug, info, warn, error, critical, "
      "off; got 'loud'");
}

BOOST_AUTO_TEST_CASE(bad_level_or_format_names_the_key) {
  env_guard env;
  mailroom::configure_logging("warn", "text");
  BOOST_TEST(invalid_argument_text("x", "text") ==
             "log.level: expected one of trace, debug, info, warn, error, critical, off; "
             "got 'x'");
  BOOST_TEST(invalid_argument_text("info", "xml") ==
             "log.format: expected one of text, json; got 'xml'");
  BOOST_TEST(invalid_argument_text("INFO", "text").find("got 'INFO'") !=
             std::string::npos);
  // A rejected call changes nothing.
  BOOST_TEST((spdlog::default_logger()->level() == spdlog::level::warn));
  BOOST_TEST((mailroom::parse_log_level("critical") == spdlog::level::critical));
  BOOST_CHECK_THROW(mailroom::check_log_format("yaml"), std::invalid_argument);
}
