#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "app/config_loader.hpp"
#include "transports/memory/memory_transport.hpp"
#include "transports/redis/redis_streams_settings.hpp"
#include "tests/support/scoped_env.hpp"

using namespace mailroom;
using mailroom::testing::scoped_env;

namespace {

const std::string source_dir = MAILROOM_SOURCE_DIR;
const std::string default_toml = source_dir + "/config/default.toml";

std::string unique_path(const std::string& suffix) {
  static std::atomic<int> counter{0};
  return "/tmp/mailroom_config_test_" + std::to_string(::getpid()) + "_" +
         std::to_string(counter++) + suffix;
}

// A file under /tmp removed at scope exit.
struct temp_file {
  explicit temp_file(const std::string& text, const std::string& suffix = ".toml")
      : path(unique_path(suffix)) {
    std::ofstream(path) << text;
  }
  temp_file() : path(unique_path(".txt")) {}
  ~temp_file() { std::remove(path.c_str()); }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;

  std::string read() const {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string path;
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// transport.type is required; a snippet about other sections gets the
// memory transport.
std::string with_transport(const std::string& text) {
  if (text.find("[transport]") != std::string::npos ||
      text.find("transport.type") != std::string::npos) {
    return text;
  }
  return text + "\n[transport]\ntype = \"memory\"\n";
}

app_config load_text(const std::string& text,
                     const std::vector<std::string>& overrides = {}) {
  temp_file f(with_transport(text));
  return load_config(f.path, overrides);
}

// Loads `text` with `overrides`, expecting a config_error about `key` whose
// message starts with the key and contains every fragment.
void check_rejected(const std::string& text, const std::vector<std::string>& overrides,
                    const std::string& key,
                    const std::vector<std::string>& fragments = {}) {
  BOOST_TEST_CONTEXT("config:\n" << text << "\nexpected key: " << key) {
    temp_file f(with_transport(text));
    try {
      load_config(f.path, overrides);
      BOOST_ERROR("accepted, expected a config_error about " << key);
    } catch (const config_error& e) {
      std::string what = e.what();
      BOOST_TEST(e.key() == key);
      BOOST_CHECK_MESSAGE(what.rfind(key + ": ", 0) == 0, "message: " << what);
      for (const auto& fragment : fragments) {
        BOOST_CHECK_MESSAGE(contains(what, fragment),
                            "message lacks '" << fragment << "': " << what);
      }
    }
  }
}

void check_rejected(const std::string& text, const std::string& key,
                    const std::vector<std::string>& fragments = {}) {
  check_rejected(text, {}, key, fragments);
}

} // namespace

BOOST_AUTO_TEST_CASE(default_toml_has_documented_values) {
  app_config c = load_config(default_toml, {});
  const auto& e = c.engine_cfg;
  BOOST_TEST(c.source_file == default_toml);
  BOOST_TEST(c.log.level == "info");
  BOOST_TEST(c.log.format == "text");
  BOOST_TEST(e.engine.max_in_flight == 4096u);
  BOOST_TEST(e.engine.workers == 4u);
  BOOST_TEST(e.engine.batch_size == 256u);
  BOOST_TEST(e.engine.poll_wait.count() == 100);
  BOOST_TEST(e.engine.handler_timeout.count() == 30000);
  BOOST_TEST((e.engine.ordering == ordering_mode::unordered));
  BOOST_TEST((e.engine.unknown_topic == unknown_topic_policy::dead_letter));
  BOOST_TEST(e.engine.drain_timeout.count() == 10000);
  BOOST_TEST(e.engine.stop_when_exhausted);
  BOOST_TEST(e.retry.base.count() == 10);
  BOOST_TEST(e.retry.cap.count() == 1000);
  BOOST_TEST(e.retry.max_attempts == 3u);
  BOOST_TEST(e.dedupe.enabled);
  BOOST_TEST(c.engine_cfg.dedupe.store == "memory");
  BOOST_TEST(e.dedupe.claim_ttl.count() == 60000);
  BOOST_TEST((e.dedupe.on_store_error == store_failure_policy::fail_closed));
  BOOST_TEST(e.sweeper.enabled);
  BOOST_TEST(e.sweeper.stale_cutoff.count() == 120000);
  BOOST_TEST(e.sweeper.limit == 100u);
  BOOST_TEST(c.engine_cfg.sweeper.store == "memory");
  BOOST_TEST(c.redis.host == "127.0.0.1");
  BOOST_TEST(c.redis.port == 6379);
  BOOST_TEST(c.redis.db == 0);
  BOOST_TEST(c.redis.username == "");
  BOOST_TEST(c.redis.password_env == "");
  BOOST_TEST(c.redis.connect_timeout.count() == 1000);
  BOOST_TEST(c.redis.command_timeout.count() == 1000);
  BOOST_TEST(c.redis.keep_alive);
  BOOST_TEST(c.redis.key_prefix == "mailroom:");
  BOOST_TEST(!c.uses_redis());
  BOOST_TEST(e.dead_letter.mask_fields.size() == 2u);
  BOOST_TEST(e.dead_letter.mask_with == "***");
  BOOST_TEST(c.transport.type == "memory");
  BOOST_TEST(c.transport.of<mailroom::memory_transport_settings>("memory").visibility_timeout.count() == 30000);
  BOOST_TEST(c.transport.of<mailroom::memory_transport_settings>("memory").capacity == 65536u);
  // [transport.redis] is documented with the struct defaults.
  const auto& rt = c.transport.of<mailroom::redis_streams_settings>("redis");
  BOOST_TEST(rt.stream == "");
  BOOST_TEST(rt.group == "mailroom");
  BOOST_TEST(rt.consumer == "");
  BOOST_TEST(rt.group_start_id == "0");
  BOOST_TEST(rt.payload_field == "payload");
  BOOST_TEST(rt.key_field == "key");
  BOOST_TEST(rt.ordering_key_field == "");
  BOOST_TEST(rt.topic == "");
  BOOST_TEST(rt.block.count() == 1000);
  BOOST_TEST(rt.min_idle.count() == 60000);
  BOOST_TEST(rt.recovery_interval.count() == 0);
  BOOST_TEST(rt.max_deliveries == 10u);
  BOOST_TEST(rt.dlq_stream == "");
  BOOST_TEST(rt.retry_zset == "");
  BOOST_TEST(rt.delete_consumer_on_close);
  BOOST_TEST(c.source.type == "generator");
  BOOST_TEST(c.source.generator.messages == 1000000u);
  BOOST_TEST(c.source.generator.duplicate_ratio == 0.05);
  BOOST_TEST(c.source.generator.poison_ratio == 0.001);
  BOOST_TEST(c.source.generator.flaky_ratio == 0.01);
  BOOST_TEST(c.source.generator.topics == std::vector<std::string>{"orders"});
  BOOST_TEST(c.default_handler.type == "demo");
  BOOST_TEST(c.default_handler.latency.count() == 0);
  BOOST_TEST(c.default_handler.command.empty());
  BOOST_TEST(c.topic_handlers.empty());
  BOOST_TEST(c.progress.enabled);
  BOOST_TEST(c.progress.interval.count() == 1000);
}

BOOST_AUTO_TEST_CASE(every_example_loads) {
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source_dir + "/config")) {
    if (entry.path().extension() != ".toml") {
      continue;
    }
    BOOST_TEST_CONTEXT("file " << entry.path()) {
      BOOST_CHECK_NO_THROW(load_config(entry.path().string(), {}));
      ++loaded;
    }
  }
  BOOST_TEST(loaded >= 2);

  app_config c = load_config(source_dir + "/config/memory-exec.toml", {});
  BOOST_TEST(c.default_handler.type == "exec");
  BOOST_TEST((c.default_handler.command ==
              std::vector<std::string>{"/bin/sh", "-c", "cat > /dev/null"}));
  BOOST_TEST(c.source.generator.messages == 10000u);
  BOOST_TEST(c.topic_handlers.count("audit") == 1u);

  app_config r = load_config(source_dir + "/config/redis-dedupe.toml", {});
  BOOST_TEST(r.engine_cfg.dedupe.store == "redis");
  BOOST_TEST(r.engine_cfg.sweeper.store == "redis");
  BOOST_TEST(r.uses_redis());
  BOOST_TEST(r.redis.password_env == "");
  BOOST_TEST(r.source.type == "generator");
  BOOST_TEST(r.source.generator.messages == 200000u);
  BOOST_TEST(r.transport.type == "memory");
  BOOST_TEST((r.engine_cfg.dedupe.on_store_error == store_failure_policy::fail_closed));

  app_config st = load_config(source_dir + "/config/redis-streams.toml", {});
  BOOST_TEST(st.transport.type == "redis");
  BOOST_TEST(st.transport.of<mailroom::redis_streams_settings>("redis").stream == "orders");
  BOOST_TEST(st.transport.of<mailroom::redis_streams_settings>("redis").group == "mailroom");
  BOOST_TEST(st.engine_cfg.dedupe.store == "redis");
  BOOST_TEST(st.source.type == "none");
  BOOST_TEST(st.default_handler.type == "demo");
  BOOST_TEST(st.uses_redis());
}

BOOST_AUTO_TEST_CASE(redis_transport_defaults_are_those_of_the_settings) {
  app_config c = load_text("[transport]\ntype = \"redis\"\n[transport.redis]\n"
                           "stream = \"orders\"\n");
  mailroom::redis_streams_settings d;
  const auto& rt = c.transport.of<mailroom::redis_streams_settings>("redis");
  BOOST_TEST(c.transport.type == "redis");
  BOOST_TEST(c.uses_redis());
  BOOST_TEST(rt.stream == "orders");
  BOOST_TEST(rt.group == d.group);
  BOOST_TEST(rt.consumer == d.consumer);
  BOOST_TEST(rt.group_start_id == d.group_start_id);
  BOOST_TEST(rt.payload_field == d.payload_field);
  BOOST_TEST(rt.key_field == d.key_field);
  BOOST_TEST(rt.ordering_key_field == d.ordering_key_field);
  BOOST_TEST(rt.topic == d.topic);
  BOOST_TEST(rt.block.count() == d.block.count());
  BOOST_TEST(rt.min_idle.count() == d.min_idle.count());
  BOOST_TEST(rt.recovery_interval.count() == d.recovery_interval.count());
  BOOST_TEST(rt.max_deliveries == d.max_deliveries);
  BOOST_TEST(rt.dlq_stream == d.dlq_stream);
  BOOST_TEST(rt.retry_zset == d.retry_zset);
  BOOST_TEST(rt.delete_consumer_on_close == d.delete_consumer_on_close);
  // The generator cannot feed a stream: source.type defaults to "none".
  BOOST_TEST(c.source.type == "none");
  // The memory transport keeps its default and never needs a stream.
  BOOST_TEST(load_text("").transport.of<mailroom::redis_streams_settings>("redis").stream == "");
  BOOST_TEST(!load_text("[transport.redis]\nmin_idle_ms = 1\n").uses_redis());
}

BOOST_AUTO_TEST_CASE(redis_transport_keys_are_read) {
  app_config c = load_text(
      "[transport]\ntype = \"redis\"\n[transport.redis]\nstream = \"in\"\n"
      "group = \"g\"\nconsumer = \"c-1\"\ngroup_start_id = \"$\"\n"
      "payload_field = \"body\"\nkey_field = \"\"\nordering_key_field = \"account\"\n"
      "topic = \"orders\"\nblock_ms = 250\nmin_idle_ms = 45000\n"
      "recovery_interval_ms = 700\nretry_check_interval_ms = 20\nmax_deliveries = "
      "0\ndlq_stream = \"in-dead\"\n"
      "retry_zset = \"in-retry\"\n"
      "delete_consumer_on_close = false\n[source]\ntype = \"none\"\n",
      {"transport.redis.consumer=c-2"});
  const auto& rt = c.transport.of<mailroom::redis_streams_settings>("redis");
  BOOST_TEST(rt.stream == "in");
  BOOST_TEST(rt.group == "g");
  BOOST_TEST(rt.consumer == "c-2");
  BOOST_TEST(rt.group_start_id == "$");
  BOOST_TEST(rt.payload_field == "body");
  BOOST_TEST(rt.key_field == "");
  BOOST_TEST(rt.ordering_key_field == "account");
  BOOST_TEST(rt.topic == "orders");
  BOOST_TEST(rt.block.count() == 250);
  BOOST_TEST(rt.min_idle.count() == 45000);
  BOOST_TEST(rt.recovery_interval.count() == 700);
  BOOST_TEST(rt.retry_check_interval.count() == 20);
  BOOST_TEST(rt.max_deliveries == 0u);
  BOOST_TEST(rt.dlq_stream == "in-dead");
  BOOST_TEST(rt.retry_zset == "in-retry");
  BOOST_TEST(!rt.delete_consumer_on_close);
  auto text = render_config(c);
  BOOST_TEST(contains(text, "[transport.redis]\nstream = \"in\"\n"));
  BOOST_TEST(contains(text, "min_idle_ms = 45000\n"));
  // The rendered configuration loads back to the same settings.
  temp_file again(text);
  auto back = load_config(again.path, {});
  BOOST_TEST(back.transport.of<mailroom::redis_streams_settings>("redis").consumer == "c-2");
  BOOST_TEST(back.transport.of<mailroom::redis_streams_settings>("redis").ordering_key_field == "account");
}

BOOST_AUTO_TEST_CASE(bad_redis_transport_values_are_rejected) {
  const std::string redis = "[transport]\ntype = \"redis\"\n";
  const std::string with_stream = redis + "[transport.redis]\nstream = \"s\"\n";
  check_rejected(redis, "transport.redis.stream", {"required", "got \"\""});
  check_rejected(redis + "[transport.redis]\nstream = \"\"\n", "transport.redis.stream",
                 {"non-empty"});
  check_rejected("", {"transport.type=redis"}, "transport.redis.stream", {"required"});
  check_rejected(with_stream + "group = \"\"\n", "transport.redis.group", {"non-empty"});
  check_rejected(with_stream + "payload_field = \"a\\u0000b\"\n",
                 "transport.redis.payload_field", {"without NUL"});
  check_rejected(with_stream + "group_start_id = \"\"\n",
                 "transport.redis.group_start_id", {"\"0\""});
  check_rejected(with_stream + "block_ms = 0\n", "transport.redis.block_ms", {"got 0"});
  // Validated here rather than failing at run time with Redis's "ERR Invalid
  // stream ID" and no key named.
  check_rejected(with_stream + "group_start_id = \"foo\"\n",
                 "transport.redis.group_start_id", {"\"$\"", "got \"foo\""});
  check_rejected(with_stream + "group_start_id = \"12-x\"\n",
                 "transport.redis.group_start_id", {"got \"12-x\""});
  BOOST_TEST(load_text(with_stream + "group_start_id = \"1700000000000-3\"\n")
                 .transport.of<mailroom::redis_streams_settings>("redis")
                 .group_start_id == "1700000000000-3");
  // A dead-letter stream equal to the stream looped: each record was read
  // back and dead-lettered again.
  check_rejected(with_stream + "dlq_stream = \"s\"\n", "transport.redis.dlq_stream",
                 {"other than transport.redis.stream"});
  check_rejected(with_stream + "retry_zset = \"s\"\n", "transport.redis.retry_zset",
                 {"other than"});
  check_rejected(with_stream + "min_idle_ms = -5\n", "transport.redis.min_idle_ms",
                 {"got -5"});
  check_rejected(with_stream + "recovery_interval_ms = \"soon\"\n",
                 "transport.redis.recovery_interval_ms", {"integer"});
  check_rejected("[retry]\nmax_attempts = 5\n" + with_stream + "max_deliveries = 4\n",
                 "transport.redis.max_deliveries",
                 {"at least retry.max_attempts (5)", "got 4"});
  check_rejected(with_stream + "retry_check_interval_ms = -1\n",
                 "transport.redis.retry_check_interval_ms", {"0..", "got -1"});
  check_rejected(with_stream + "max_deliveries = 5000000000\n",
                 "transport.redis.max_deliveries", {"got 5000000000"});
  check_rejected(with_stream + "delete_consumer_on_close = 1\n",
                 "transport.redis.delete_consumer_on_close", {"boolean"});
  check_rejected(with_stream + "dlq_stream = 3\n", "transport.redis.dlq_stream",
                 {"expected string"});
  check_rejected(with_stream + "streem = \"x\"\n", "transport.redis.streem",
                 {"did you mean \"stream\""});
  check_rejected(with_stream + "host = \"x\"\n", "transport.redis.host", {"unknown key"});
  check_rejected("[transport]\nredis = 1\n", "transport.redis", {"expected table"});
  // The generator feeds only the memory transport.
  check_rejected(with_stream + "[source]\ntype = \"generator\"\n", "source.type",
                 {"\"none\" when transport.type is \"redis\"", "got \"generator\""});
  std::ifstream in(default_toml);
  std::ostringstream default_text;
  default_text << in.rdbuf();
  check_rejected(default_text.str(), {"transport.type=redis", "transport.redis.stream=s"},
                 "source.type", {"\"none\""});
}

BOOST_AUTO_TEST_CASE(min_idle_must_exceed_the_handler_timeout) {
  const std::string base =
      "[engine]\nhandler_timeout_ms = 5000\n[transport]\ntype = \"redis\"\n"
      "[transport.redis]\nstream = \"s\"\n";
  check_rejected(base + "min_idle_ms = 5000\n", "transport.redis.min_idle_ms",
                 {"more than engine.handler_timeout_ms (5000)", "got 5000"});
  check_rejected(base + "min_idle_ms = 100\n", "transport.redis.min_idle_ms",
                 {"got 100"});
  check_rejected(base,
                 {"engine.handler_timeout_ms=60000", "dedupe.enabled=false",
                  "sweeper.enabled=false"},
                 "transport.redis.min_idle_ms", {"(60000)", "got 60000"});
  BOOST_TEST(load_text(base + "min_idle_ms = 5001\n").transport.of<mailroom::redis_streams_settings>("redis").min_idle.count() ==
             5001);
  // Only checked when the stream transport is in use.
  BOOST_TEST(load_text("[engine]\nhandler_timeout_ms = 5000\n[transport.redis]\n"
                       "min_idle_ms = 100\n")
                 .transport.type == "memory");
}

BOOST_AUTO_TEST_CASE(an_empty_file_is_rejected_for_its_missing_transport_type) {
  // A config mount gone wrong must not run the 1M-message demo.
  temp_file empty("");
  try {
    load_config(empty.path, {});
    BOOST_FAIL("an empty file was accepted");
  } catch (const config_error& e) {
    BOOST_TEST(e.key() == "transport.type");
    BOOST_TEST(std::string{e.what()}.find("required") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(a_file_with_only_the_transport_gives_struct_defaults) {
  app_config c = load_text("");
  app_config d;
  BOOST_TEST(c.engine_cfg.engine.workers == d.engine_cfg.engine.workers);
  BOOST_TEST(c.engine_cfg.retry.cap.count() == d.engine_cfg.retry.cap.count());
  BOOST_TEST(c.source.generator.seed == d.source.generator.seed);
  BOOST_TEST(c.default_handler.type == "demo");
  BOOST_TEST(render_config(c).find("[engine]") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(redis_section_is_read) {
  scoped_env pw{"MAILROOM_CONFIG_TEST_SET_PW", "x"};
  app_config c = load_text(R"(
[dedupe]
store = "redis"
[sweeper]
store = "redis"
[redis]
host = "redis.internal"
port = 6380
db = 3
username = "mailroom"
password_env = "MAILROOM_CONFIG_TEST_SET_PW"
connect_timeout_ms = 250
command_timeout_ms = 1500
keep_alive = false
key_prefix = "orders:"
)");
  BOOST_TEST(c.engine_cfg.dedupe.store == "redis");
  BOOST_TEST(c.engine_cfg.sweeper.store == "redis");
  BOOST_TEST(c.uses_redis());
  BOOST_TEST(c.redis.host == "redis.internal");
  BOOST_TEST(c.redis.port == 6380);
  BOOST_TEST(c.redis.db == 3);
  BOOST_TEST(c.redis.username == "mailroom");
  BOOST_TEST(c.redis.password_env == "MAILROOM_CONFIG_TEST_SET_PW");
  BOOST_TEST(c.redis.connect_timeout.count() == 250);
  BOOST_TEST(c.redis.command_timeout.count() == 1500);
  BOOST_TEST(!c.redis.keep_alive);
  BOOST_TEST(c.redis.key_prefix == "orders:");
}

BOOST_AUTO_TEST_CASE(redis_defaults_are_those_of_redis_settings) {
  app_config c = load_text("");
  redis_settings d;
  BOOST_TEST(c.engine_cfg.dedupe.store == "memory");
  BOOST_TEST(c.engine_cfg.sweeper.store == "memory");
  BOOST_TEST(!c.uses_redis());
  BOOST_TEST(c.redis.host == d.host);
  BOOST_TEST(c.redis.port == d.port);
  BOOST_TEST(c.redis.db == d.db);
  BOOST_TEST(c.redis.username == d.username);
  BOOST_TEST(c.redis.password_env == d.password_env);
  BOOST_TEST(c.redis.connect_timeout.count() == d.connect_timeout.count());
  BOOST_TEST(c.redis.command_timeout.count() == d.command_timeout.count());
  BOOST_TEST(c.redis.keep_alive == d.keep_alive);
  BOOST_TEST(c.redis.key_prefix == d.key_prefix);

  // Only an enabled feature on a "redis" store uses the server.
  BOOST_TEST(load_text("[sweeper]\nstore = \"redis\"\n").uses_redis());
  BOOST_TEST(!load_text("[dedupe]\nenabled = false\nstore = \"redis\"\n").uses_redis());
  BOOST_TEST(!load_text("[sweeper]\nenabled = false\nstore = \"redis\"\n").uses_redis());
}

BOOST_AUTO_TEST_CASE(redis_overrides_apply) {
  scoped_env pw{"MAILROOM_CONFIG_TEST_SET_PW", "x"};
  app_config c = load_text(
      "", {"dedupe.store=redis", "redis.host=10.0.0.5", "redis.port=6390",
           "redis.key_prefix=t1:", "redis.password_env=MAILROOM_CONFIG_TEST_SET_PW"});
  BOOST_TEST(c.engine_cfg.dedupe.store == "redis");
  BOOST_TEST(c.redis.host == "10.0.0.5");
  BOOST_TEST(c.redis.port == 6390);
  BOOST_TEST(c.redis.key_prefix == "t1:");
  BOOST_TEST(c.redis.password_env == "MAILROOM_CONFIG_TEST_SET_PW");
}

BOOST_AUTO_TEST_CASE(bad_redis_values_are_rejected) {
  check_rejected("[redis]\nport = 0\n", "redis.port", {"1..65535", "got 0"});
  check_rejected("[redis]\nport = 70000\n", "redis.port", {"1..65535", "got 70000"});
  check_rejected("", {"redis.port=0"}, "redis.port", {"got 0"});
  check_rejected("[redis]\nport = \"6379\"\n", "redis.port",
                 {"expected integer", "got string"});
  check_rejected("[redis]\ndb = -1\n", "redis.db", {"0..", "got -1"});
  check_rejected("[redis]\nconnect_timeout_ms = 0\n", "redis.connect_timeout_ms",
                 {"milliseconds", "got 0"});
  check_rejected("[redis]\ncommand_timeout_ms = 0\n", "redis.command_timeout_ms",
                 {"got 0"});
  check_rejected("[redis]\nkeep_alive = \"yes\"\n", "redis.keep_alive",
                 {"expected boolean"});
  check_rejected("[redis]\nhost = \"\"\n", "redis.host", {"non-empty"});
  check_rejected("[redis]\nusername = 5\n", "redis.username", {"expected string"});
  check_rejected("[redis]\nhots = \"x\"\n", "redis.hots",
                 {"unknown key", "did you mean \"host\""});
  check_rejected("[redis]\npassword = \"x\"\n", "redis.password", {"unknown key"});
  check_rejected("redis = 1\n", "redis", {"expected table"});
  check_rejected("[dedupe]\nstore = \"mysql\"\n", "dedupe.store",
                 {"one of \"memory\", \"redis\"", "got \"mysql\""});
  check_rejected("[sweeper]\nstore = \"postgres\"\n", "sweeper.store",
                 {"one of \"memory\", \"redis\"", "got \"postgres\""});
  check_rejected("", {"sweeper.store=disk"}, "sweeper.store", {"got \"disk\""});
}

BOOST_AUTO_TEST_CASE(password_env_must_be_a_variable_name) {
  // A value that is no variable name may be the password pasted in by
  // mistake: the error must not repeat it.
  const std::string pasted = "s3cr3t!pass word";
  temp_file f("[redis]\npassword_env = \"" + pasted + "\"\n");
  try {
    load_config(f.path, {});
    BOOST_ERROR("accepted a password_env that is no variable name");
  } catch (const config_error& e) {
    BOOST_TEST(e.key() == "redis.password_env");
    BOOST_CHECK_MESSAGE(!contains(e.what(), pasted), e.what());
    BOOST_CHECK_MESSAGE(contains(e.what(), "NAME"), e.what());
  }
  check_rejected("[redis]\npassword_env = \"9LIVES\"\n", "redis.password_env");
  check_rejected("[redis]\npassword_env = \"A=B\"\n", "redis.password_env");
  BOOST_CHECK_NO_THROW(load_text("[redis]\npassword_env = \"_redis_pw2\"\n"));
  BOOST_CHECK_NO_THROW(load_text("[redis]\npassword_env = \"\"\n"));
}

BOOST_AUTO_TEST_CASE(unset_password_env_is_a_config_error_when_redis_is_used) {
  const std::string var = "MAILROOM_CONFIG_TEST_PW_" + std::to_string(::getpid());
  ::unsetenv(var.c_str());
  std::string redis = "[redis]\npassword_env = \"" + var + "\"\n";
  check_rejected(redis + "[dedupe]\nstore = \"redis\"\n", "redis.password_env",
                 {var, "not set"});
  check_rejected(redis + "[sweeper]\nstore = \"redis\"\n", "redis.password_env",
                 {var, "not set"});
  check_rejected(redis, {"dedupe.store=redis"}, "redis.password_env", {var});
  // No store on Redis: the section is unused and the variable not needed.
  BOOST_CHECK_NO_THROW(load_text(redis));
  BOOST_CHECK_NO_THROW(
      load_text(redis + "[dedupe]\nenabled = false\nstore = \"redis\"\n"));

  const std::string password = "pw-value-never-shown";
  scoped_env pw{var, password};
  app_config c = load_text(redis + "[dedupe]\nstore = \"redis\"\n");
  BOOST_TEST(c.redis.password_env == var);
  std::string text = render_config(c);
  BOOST_CHECK_MESSAGE(contains(text, "password_env = \"" + var + "\""), text);
  BOOST_CHECK_MESSAGE(!contains(text, password), text);
}

BOOST_AUTO_TEST_CASE(full_file_is_read) {
  app_config c = load_text(R"(
[engine]
workers = 16
ordering = "per_key"
unknown_topic = "ack"
[dedupe]
on_store_error = "fail_open"
[source]
type = "none"
duplicate_ratio = 0
topics = ["a", "b"]
[handler]
type = "demo"
latency_us = 250
[handlers.b]
type = "exec"
command = ["/bin/true"]
env = { B = "2", A = "1" }
[handlers."with.dot"]
type = "log"
)");
  BOOST_TEST(c.engine_cfg.engine.workers == 16u);
  BOOST_TEST((c.engine_cfg.engine.ordering == ordering_mode::per_key));
  BOOST_TEST((c.engine_cfg.engine.unknown_topic == unknown_topic_policy::ack));
  BOOST_TEST((c.engine_cfg.dedupe.on_store_error == store_failure_policy::fail_open));
  BOOST_TEST(c.source.type == "none");
  BOOST_TEST(c.source.generator.duplicate_ratio == 0.0);
  BOOST_TEST(c.default_handler.latency.count() == 250);
  BOOST_TEST(c.topic_handlers.at("b").type == "exec");
  BOOST_TEST(c.topic_handlers.at("b").env.size() == 2u);
  BOOST_TEST(c.topic_handlers.at("with.dot").type == "log");
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_rejected) {
  check_rejected("wokers = 3\n", "wokers", {"unknown key"});
  check_rejected("[enginee]\nworkers = 3\n", "enginee", {"unknown key", "\"engine\""});
  check_rejected("[engine]\nwokers = 3\n", "engine.wokers",
                 {"unknown key", "did you mean \"workers\""});
  check_rejected("[transport.memory]\ncapacityy = 3\n", "transport.memory.capacityy",
                 {"unknown key"});
  check_rejected("[handlers.orders]\ntpye = \"noop\"\n", "handlers.orders.tpye",
                 {"unknown key", "\"type\""});
  check_rejected("[handler]\nzzzzzzzz = 1\n", "handler.zzzzzzzz", {"known keys: type"});
}

BOOST_AUTO_TEST_CASE(wrong_types_are_rejected) {
  check_rejected("[engine]\nworkers = \"four\"\n", "engine.workers",
                 {"expected integer", "got string \"four\""});
  check_rejected("[engine]\nworkers = 4.5\n", "engine.workers",
                 {"expected integer", "got floating-point 4.5"});
  check_rejected("[dedupe]\nenabled = \"yes\"\n", "dedupe.enabled", {"expected boolean"});
  check_rejected("engine = 5\n", "engine", {"expected table", "got integer 5"});
  check_rejected("[source]\ntopics = \"orders\"\n", "source.topics",
                 {"expected array of strings", "got string"});
  check_rejected("[source]\ntopics = [\"a\", 3]\n", "source.topics",
                 {"expected array of strings", "integer 3 at index 1"});
  check_rejected("[log]\nlevel = 3\n", "log.level", {"expected string", "got integer 3"});
  check_rejected("[handler]\ntype = \"exec\"\ncommand = [\"x\"]\nenv = { A = [1] }\n",
                 "handler.env.A", {"expected string"});
  check_rejected("handlers = { orders = 1 }\n", "handlers.orders", {"expected table"});
}

// Numbers and booleans in a string table are taken as their text (librdkafka
// properties are strings, and `session.timeout.ms = 6000` is what people write).
BOOST_AUTO_TEST_CASE(numbers_in_a_string_table_are_their_text) {
  auto c = load_text("[handler]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n"
                     "env = { A = 1, B = true }\n");
  using entry = std::pair<std::string, std::string>;
  std::vector<entry> want{{"A", "1"}, {"B", "true"}};
  BOOST_TEST((c.default_handler.env == want));
}

BOOST_AUTO_TEST_CASE(out_of_range_numbers_are_rejected) {
  check_rejected("[engine]\nworkers = 0\n", "engine.workers", {"1..1024", "got 0"});
  check_rejected("[engine]\nworkers = 1025\n", "engine.workers", {"got 1025"});
  check_rejected("[engine]\nmax_in_flight = 4294967296\n", "engine.max_in_flight",
                 {"1..1000000", "got 4294967296"});
  // Values that passed validation and then crashed the poller on every
  // restart (a vector of 4e9 envelopes) are out of range now.
  check_rejected("", {"engine.max_in_flight=4294967295"}, "engine.max_in_flight",
                 {"1..1000000", "got 4294967295"});
  check_rejected("", {"engine.batch_size=1000000000"}, "engine.batch_size",
                 {"1..100000", "got 1000000000"});
  check_rejected("[retry]\nmax_attempts = 0\n", "retry.max_attempts", {"got 0"});
  check_rejected("[source]\npoison_ratio = 1.5\n", "source.poison_ratio",
                 {"0..1", "got 1.5"});
  check_rejected("[source]\npoison_ratio = 0.6\nflaky_ratio = 0.6\n",
                 "source.flaky_ratio");
  check_rejected("[dedupe]\nresult_ttl_ms = 99999999999\n", "dedupe.result_ttl_ms",
                 {"got 99999999999"});
  check_rejected("[source]\ntopics = []\n", "source.topics", {"non-empty"});
  check_rejected("[retry]\nbase_ms = 500\ncap_ms = 100\n", "retry.cap_ms",
                 {"retry.base_ms", "got 100"});
}

BOOST_AUTO_TEST_CASE(negative_durations_are_rejected) {
  check_rejected("[engine]\npoll_wait_ms = -5\n", "engine.poll_wait_ms",
                 {"milliseconds", "got -5"});
  check_rejected("[retry]\nbase_ms = -1\n", "retry.base_ms", {"got -1"});
  check_rejected("[handler]\nlatency_us = -10\n", "handler.latency_us",
                 {"microseconds", "got -10"});
}

BOOST_AUTO_TEST_CASE(bad_enum_values_are_rejected) {
  check_rejected("[engine]\nordering = \"random\"\n", "engine.ordering",
                 {"\"unordered\"", "\"per_key\"", "got \"random\""});
  check_rejected("[log]\nlevel = \"verbose\"\n", "log.level",
                 {"\"warn\"", "got \"verbose\""});
  check_rejected("[dedupe]\non_store_error = \"ignore\"\n", "dedupe.on_store_error",
                 {"fail_open"});
  check_rejected("[handler]\ntype = \"lambda\"\n", "handler.type", {"\"exec\""});
  check_rejected("[transport]\ntype = \"rabbitmq\"\n", "transport.type",
                 {"\"memory\"", "got \"rabbitmq\""});
  // A known transport without its required settings names the missing key.
  check_rejected("[transport]\ntype = \"kafka\"\n", "transport.kafka.brokers",
                 {"required when transport.type is \"kafka\"", "got \"\""});
  check_rejected("[source]\ntype = \"file\"\n", "source.type", {"\"generator\""});
  check_rejected("[transport]\ntype = \"sqs\"\n", "transport.sqs.queue_url",
                 {"required when transport.type is \"sqs\"", "got \"\""});
}

BOOST_AUTO_TEST_CASE(exec_needs_a_command) {
  check_rejected("[handler]\ntype = \"exec\"\n", "handler.command", {"non-empty"});
  check_rejected("[handlers.x]\ntype = \"exec\"\ncommand = []\n", "handlers.x.command",
                 {"got []"});
  BOOST_CHECK_NO_THROW(
      load_text("[handler]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n"));
}

BOOST_AUTO_TEST_CASE(timeouts_must_outlive_the_handler) {
  check_rejected(
      "[engine]\nhandler_timeout_ms = 5000\n[sweeper]\nstale_cutoff_ms = 5000\n",
      "sweeper.stale_cutoff_ms", {"engine.handler_timeout_ms", "got 5000"});
  check_rejected("[engine]\nhandler_timeout_ms = 200000\n", "dedupe.claim_ttl_ms",
                 {"engine.handler_timeout_ms"});
  check_rejected("[dedupe]\nclaim_ttl_ms = 30000\n", "dedupe.claim_ttl_ms",
                 {"engine.handler_timeout_ms", "got 30000"});
  // A disabled feature does not constrain the timeout.
  BOOST_CHECK_NO_THROW(load_text("[engine]\nhandler_timeout_ms = 5000\n"
                                 "[sweeper]\nenabled = false\nstale_cutoff_ms = 5000\n"));
  BOOST_CHECK_NO_THROW(load_text("[dedupe]\nenabled = false\nclaim_ttl_ms = 30000\n"));
}

BOOST_AUTO_TEST_CASE(bad_masks_are_rejected) {
  check_rejected("[dead_letter]\nmask_regex = \"([a-z\"\n", "dead_letter.mask_regex",
                 {"([a-z"});
  check_rejected("[dead_letter]\nmask_fields = [\"$.ok\", \"card.number\"]\n",
                 "dead_letter.mask_fields", {"card.number"});
  BOOST_CHECK_NO_THROW(load_text("[dead_letter]\nmask_fields = [\"$.a[*].b\"]\n"
                                 "mask_regex = '\\d+'\nmask_with = \"#\"\n"));
}

BOOST_AUTO_TEST_CASE(syntax_error_names_the_line) {
  temp_file f("[engine]\nworkers = 4\nbatch_size = = 3\n");
  try {
    load_config(f.path, {});
    BOOST_ERROR("accepted a syntax error");
  } catch (const config_error& e) {
    std::string what = e.what();
    BOOST_TEST(e.key().empty());
    BOOST_CHECK_MESSAGE(contains(what, "line 3"), what);
    BOOST_CHECK_MESSAGE(contains(what, f.path), what);
  }
}

BOOST_AUTO_TEST_CASE(missing_file_names_the_path) {
  std::string path = unique_path("_missing.toml");
  try {
    load_config(path, {});
    BOOST_ERROR("accepted a missing file");
  } catch (const config_error& e) {
    BOOST_TEST(e.key().empty());
    BOOST_CHECK_MESSAGE(contains(e.what(), path), e.what());
  }
}

BOOST_AUTO_TEST_CASE(malformed_overrides_are_rejected) {
  check_rejected("", {"engine.workers"}, "engine.workers", {"--set", "no '='"});
  check_rejected("", {"=5"}, "=5", {"--set", "empty key"});
  check_rejected("", {"engine..workers=5"}, "engine..workers=5", {"empty key segment"});
  check_rejected("[engine]\nworkers = 4\n", {"engine.workers.deeper=5"}, "engine.workers",
                 {"expected table", "got integer 4"});
  check_rejected("", {"engine.workers.deeper=5"}, "engine.workers", {"got table"});
}

BOOST_AUTO_TEST_CASE(overrides_of_unknown_keys_are_rejected) {
  check_rejected("", {"engine.wokers=3"}, "engine.wokers", {"unknown key"});
  check_rejected("", {"handlers.orders.tpye=noop"}, "handlers.orders.tpye",
                 {"unknown key"});
  check_rejected("", {"nosuch.key=1"}, "nosuch", {"unknown key"});
  check_rejected("", {"engine.workers=abc"}, "engine.workers", {"got string \"abc\""});
}

BOOST_AUTO_TEST_CASE(overrides_replace_values) {
  app_config c = load_text("[engine]\nworkers = 2\n",
                           {"engine.workers=8", "dedupe.enabled=false", "log.level=debug",
                            "log.format=\"json\"", "source.topics=[\"a\", \"b\"]",
                            "handlers.orders.type=noop", " engine.batch_size = 32 ",
                            "dead_letter.mask_with=0", "retry.max_attempts=2",
                            "retry.max_attempts=7", "handlers.\"orders.v1\".type=log",
                            "dead_letter.mask_regex=\\d{4}"});
  BOOST_TEST(c.engine_cfg.engine.workers == 8u);
  BOOST_TEST(!c.engine_cfg.dedupe.enabled);
  BOOST_TEST(c.log.level == "debug");
  BOOST_TEST(c.log.format == "json");
  BOOST_TEST((c.source.generator.topics == std::vector<std::string>{"a", "b"}));
  BOOST_TEST(c.topic_handlers.at("orders").type == "noop");
  BOOST_TEST(c.topic_handlers.at("orders.v1").type == "log");
  BOOST_TEST(c.engine_cfg.engine.batch_size == 32u);
  BOOST_TEST(c.engine_cfg.dead_letter.mask_with == "0");
  BOOST_TEST(c.engine_cfg.dead_letter.mask_regex == "\\d{4}");
  BOOST_TEST(c.engine_cfg.retry.max_attempts == 7u);

  // Overrides obey the same checks as the file.
  check_rejected("", {"engine.workers=0"}, "engine.workers", {"got 0"});
  check_rejected("", {"dedupe.claim_ttl_ms=100"}, "dedupe.claim_ttl_ms");
}

BOOST_AUTO_TEST_CASE(render_redacts_secrets) {
  const std::string secret = "hunter2-do-not-print";
  app_config c = load_text("[handler]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\n"
                           "env = { API_TOKEN = \"" +
                           secret +
                           "\", PLAIN = \"visible\" }\n"
                           "[handlers.x]\nenv = { db_Password = \"" +
                           secret + "\" }\n");
  std::string text = render_config(c);
  BOOST_CHECK_MESSAGE(!contains(text, secret), text);
  BOOST_TEST(contains(text, "API_TOKEN = \"<redacted>\""));
  BOOST_TEST(contains(text, "db_Password = \"<redacted>\""));
  BOOST_TEST(contains(text, "PLAIN = \"visible\""));

  BOOST_TEST(is_secret_key("password"));
  BOOST_TEST(is_secret_key("AWS_SECRET_ACCESS_KEY"));
  BOOST_TEST(is_secret_key("aws_access_key_id"));
  BOOST_TEST(is_secret_key("Credentials"));
  BOOST_TEST(!is_secret_key("workers"));
  BOOST_TEST(!is_secret_key("PATH"));
}

BOOST_AUTO_TEST_CASE(render_shows_password_env_and_the_redis_section) {
  // password_env holds a variable's name, not a secret: hiding it would hide
  // the one thing an operator needs to check.
  app_config c = load_text("[redis]\npassword_env = \"REDIS_PASSWORD\"\nport = 6390\n");
  std::string text = render_config(c);
  BOOST_CHECK_MESSAGE(contains(text, "password_env = \"REDIS_PASSWORD\""), text);
  BOOST_CHECK_MESSAGE(contains(text, "[redis]\nhost = \"127.0.0.1\"\nport = 6390\n"),
                      text);
  BOOST_CHECK_MESSAGE(contains(text, "key_prefix = \"mailroom:\""), text);
  BOOST_CHECK_MESSAGE(contains(text, "[sweeper]\nenabled = true\nstore = \"memory\"\n"),
                      text);
  BOOST_CHECK_MESSAGE(contains(text, "[dedupe]\nenabled = true\nstore = \"memory\"\n"),
                      text);
  BOOST_TEST(!contains(text, "<redacted>"));
  // The rule itself is unchanged: only the schema key is exempt, so a
  // handler env entry of that name is still hidden.
  BOOST_TEST(is_secret_key("password_env"));
  app_config h = load_text("[handler]\nenv = { password_env = \"hunter2\" }\n");
  BOOST_TEST(contains(render_config(h), "env = { password_env = \"<redacted>\" }"));
}

BOOST_AUTO_TEST_CASE(render_round_trips) {
  app_config c = load_text(R"(
[engine]
workers = 7
ordering = "per_key"
[dead_letter]
mask_fields = ["$.a", "$.rows[0]['e-mail']"]
mask_regex = '\d{4}'
mask_with = "quote \" backslash \\ tab	end é"
[source]
duplicate_ratio = 0.125
topics = ["orders", "audit"]
[handler]
type = "demo"
latency_us = 1500
[handlers.audit]
type = "exec"
command = ["/bin/sh", "-c", "echo 'hi'"]
env = { "WEIRD NAME" = "v", A = "b" }
[dedupe]
store = "redis"
[sweeper]
store = "redis"
[redis]
host = "::1"
port = 7000
db = 2
username = "app"
connect_timeout_ms = 20
command_timeout_ms = 30
keep_alive = false
key_prefix = "p \" q:"
)");
  std::string first = render_config(c);
  temp_file f(first);
  app_config again = load_config(f.path, {});
  std::string second = render_config(again);
  // Only the comment naming the source file differs.
  BOOST_TEST(first.substr(first.find('\n')) == second.substr(second.find('\n')));
  BOOST_TEST(again.engine_cfg.dead_letter.mask_with ==
             c.engine_cfg.dead_letter.mask_with);
  BOOST_TEST(again.source.generator.duplicate_ratio == 0.125);
  BOOST_TEST(again.topic_handlers.at("audit").env.size() == 2u);
  BOOST_TEST(again.engine_cfg.dedupe.store == "redis");
  BOOST_TEST(again.engine_cfg.sweeper.store == "redis");
  BOOST_TEST(again.redis.host == "::1");
  BOOST_TEST(again.redis.port == 7000);
  BOOST_TEST(again.redis.db == 2);
  BOOST_TEST(again.redis.username == "app");
  BOOST_TEST(!again.redis.keep_alive);
  BOOST_TEST(again.redis.key_prefix == "p \" q:");
  BOOST_TEST(again.redis.command_timeout.count() == 30);
}

namespace {

struct run_result {
  int code = -1;
  std::string out;
  std::string err;
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return q + "'";
}

[[maybe_unused]] run_result run_binary(const std::string& binary,
                                       const std::vector<std::string>& args) {
  temp_file out;
  temp_file err;
  std::string cmd = shell_quote(binary);
  for (const auto& a : args) {
    cmd += " " + shell_quote(a);
  }
  cmd += " >" + shell_quote(out.path) + " 2>" + shell_quote(err.path) + " </dev/null";
  int status = std::system(cmd.c_str());
  run_result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = out.read();
  r.err = err.read();
  return r;
}

} // namespace

BOOST_AUTO_TEST_CASE(cli_exit_codes) {
#ifndef MAILROOM_BINARY
  BOOST_TEST_MESSAGE("MAILROOM_BINARY is not defined; the command line is not checked");
  BOOST_TEST(true);
#else
  const std::string bin = MAILROOM_BINARY;
  BOOST_REQUIRE_MESSAGE(std::filesystem::exists(bin), "no binary at " << bin);

  auto ok = run_binary(bin, {"validate", "--config", default_toml});
  BOOST_TEST(ok.code == 0);
  BOOST_CHECK_MESSAGE(contains(ok.err, "config OK"), ok.err);
  BOOST_TEST(contains(ok.out, "[engine]"));
  BOOST_TEST(contains(ok.out, "messages = 1000000"));

  auto implicit = run_binary(bin, {"validate"});
  BOOST_TEST(implicit.code == 0);
  BOOST_TEST(contains(implicit.err, "config OK"));

  temp_file bad("[engine]\nwokers = 3\n");
  auto rejected = run_binary(bin, {"validate", "--config", bad.path});
  BOOST_TEST(rejected.code == 2);
  BOOST_CHECK_MESSAGE(contains(rejected.err, "mailroom: config error: engine.wokers"),
                      rejected.err);

  auto bad_run = run_binary(bin, {"run", "--config", bad.path});
  BOOST_TEST(bad_run.code == 2);
  BOOST_TEST(contains(bad_run.err, "engine.wokers"));

  auto bad_set = run_binary(bin, {"validate", "--set", "engine.workers=0"});
  BOOST_TEST(bad_set.code == 2);
  BOOST_TEST(contains(bad_set.err, "engine.workers"));

  auto malformed = run_binary(bin, {"validate", "--set", "engine.workers"});
  BOOST_TEST(malformed.code == 2);

  auto set_ok = run_binary(bin, {"validate", "--set", "engine.workers=9", "--set",
                                 "handler.env={ SECRET_KEY = \"zz-top-secret\" }"});
  BOOST_TEST(set_ok.code == 0);
  BOOST_TEST(contains(set_ok.out, "workers = 9"));
  BOOST_TEST(!contains(set_ok.out, "zz-top-secret"));

  auto missing = run_binary(bin, {"validate", "--config", unique_path("_missing.toml")});
  BOOST_TEST(missing.code == 2);
  BOOST_TEST(contains(missing.err, "config error"));

  BOOST_TEST(run_binary(bin, {}).code == 2);
  BOOST_TEST(run_binary(bin, {"frobnicate"}).code == 2);
  BOOST_TEST(run_binary(bin, {"validate", "--no-such-flag"}).code == 2);
  BOOST_TEST(run_binary(bin, {"--help"}).code == 0);
#endif
}
