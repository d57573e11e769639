#include <spdlog/spdlog.h>

#include "app/app_config.hpp"
#include "app/generator_source.hpp"
#include "app/transport_registry.hpp"
#include "core/dedupe_key.hpp"
#include "transports/memory/memory_transport.hpp"
#include "transports/memory/memory_transport_schema.hpp"

#ifdef MAILROOM_WITH_REDIS
#include "app/redis_probe.hpp"
#include "stores/redis/redis_attempt_log.hpp"
#include "transports/redis/redis_streams_schema.hpp"
#include "transports/redis/redis_streams_dlq.hpp"
#include "transports/redis/redis_streams_transport.hpp"
#endif

#ifdef MAILROOM_WITH_KAFKA
#include "transports/kafka/kafka_conf.hpp"
#include "transports/kafka/kafka_dlq.hpp"
#include "transports/kafka/kafka_schema.hpp"
#include "transports/kafka/kafka_transport.hpp"
#endif

#ifdef MAILROOM_WITH_SQS
#include "transports/sqs/sqs_dlq.hpp"
#include "transports/sqs/sqs_transport.hpp"
#include "transports/sqs/sqs_transport_schema.hpp"
#endif

namespace mailroom {

namespace {

// The generator feeding a memory transport for the run.
class generator_feed final : public run_source {
public:
  generator_feed(memory_transport& t, const generator_settings& s) : generator_(t, s) {}
  void start() override { generator_.start(); }
  void stop() override { generator_.stop(); }
  void join() override { generator_.join(); }

private:
  generator_source generator_;
};

// What clears a replayed message's idempotency key, so that its replay is
// not deduped away: a DEL on the shared Redis store when dedupe keeps its
// keys there; nothing when they live in the consumer's memory (gone with it).
std::function<void(const std::string&, const std::string&)>
idempotency_key_eraser(const app_config& cfg) {
#ifdef MAILROOM_WITH_REDIS
  if (cfg.engine_cfg.dedupe.enabled && cfg.engine_cfg.dedupe.store == "redis") {
    auto connection = std::make_shared<redis_connection>(cfg.redis);
    check_redis(*connection);
    const auto scope = cfg.engine_cfg.dedupe.scope;
    return [connection, scope](const std::string& topic, const std::string& key) {
      envelope as_delivered;
      as_delivered.topic = topic;
      as_delivered.key = key;
      auto r = connection->command(
          {"DEL", connection->key("idem:") + dedupe_key(as_delivered, scope)});
      if (!r) {
        throw std::runtime_error("cannot clear idempotency key \"" + key +
                                 "\" in Redis: " + r.status.what);
      }
    };
  }
#else
  (void)cfg;
#endif
  return {};
}

template <class S> const S& settings_of(const settings_box& box) {
  return *static_cast<const S*>(box.data());
}

// A kind named `name` whose settings are an `S` declared by `schema`, checked
// against each other and the engine's settings by `problems(S, engine_config)`.
template <class S, class Problems>
transport_kind kind_of(const char* name, const settings_schema<S>& (*schema)(),
                       Problems problems) {
  transport_kind k;
  k.name = name;
  k.settings = [schema] { return std::make_unique<typed_settings_box<S>>(schema()); };
  k.problems = [problems](const settings_box& box, const app_config& cfg) {
    return problems(settings_of<S>(box), cfg.engine_cfg);
  };
  return k;
}

transport_kind memory_kind() {
  auto problems = [](const memory_transport_settings& s, const engine_config& engine) {
    std::vector<setting_problem> out;
    auto limit = s.max_deliveries;
    if (limit != 0 && limit < engine.retry.max_attempts) {
      out.push_back({"max_deliveries",
                     "0 or at least retry.max_attempts (" +
                         std::to_string(engine.retry.max_attempts) +
                         ") so a message within its retry budget is not rejected for its "
                         "delivery count",
                     std::to_string(limit)});
    }
    return out;
  };
  auto k = kind_of<memory_transport_settings>("memory", &memory_transport_schema, problems);
  k.feeds_generator = true;
  k.create = [](const settings_box& box, const app_config& cfg) {
    transport_instance out;
    auto memory =
        std::make_shared<memory_transport>(settings_of<memory_transport_settings>(box));
    if (cfg.source.type == "generator") {
      out.source = std::make_unique<generator_feed>(*memory, cfg.source.generator);
    } else {
      memory->close_input();
    }
    out.transport = std::move(memory);
    return out;
  };
  return k;
}

#ifdef MAILROOM_WITH_REDIS
transport_kind redis_streams_kind() {
  auto k = kind_of<redis_streams_settings>("redis", &redis_streams_schema,
                                           &redis_streams_problems);
  k.create = [](const settings_box& box, const app_config& cfg) {
    auto settings = settings_of<redis_streams_settings>(box);
    settings.redis = cfg.redis;
    auto streams = std::make_shared<redis_streams_transport>(std::move(settings));
    // The transport's connections are its own; a probe on the same settings
    // gives the same clear start-up error as the stores.
    redis_connection probe{cfg.redis};
    check_redis(probe);
    if (auto r = streams->ensure_group(); !r) {
      throw std::runtime_error("cannot create consumer group \"" +
                               streams->settings().group + "\" on stream \"" +
                               streams->settings().stream + "\": " + r.what);
    }
    spdlog::info("mailroom: consuming stream \"{}\" as {} in group \"{}\" at {}",
                 streams->settings().stream, streams->settings().consumer,
                 streams->settings().group, redis_description(cfg.redis));
    transport_instance out;
    // Histories live beside the stream: any consumer of the group that takes
    // a redelivery over finds them there.
    out.attempts = std::make_shared<redis_attempt_log>(cfg.redis, streams->source_id(),
                                                       attempt_history_ttl);
    out.transport = std::move(streams);
    return out;
  };
  k.open_dlq = [](const settings_box& box,
                  const app_config& cfg) -> std::unique_ptr<dead_letter_queue> {
    auto settings = settings_of<redis_streams_settings>(box);
    settings.redis = cfg.redis;
    redis_connection probe{cfg.redis};
    check_redis(probe);
    return std::make_unique<redis_streams_dlq>(std::move(settings),
                                               cfg.engine_cfg.dedupe.scope);
  };
  return k;
}
#endif

#ifdef MAILROOM_WITH_KAFKA
transport_kind kafka_kind() {
  auto k = kind_of<kafka_settings>("kafka", &kafka_schema, &kafka_problems);
  k.describe = [](const settings_box& box, const app_config&) {
    const auto& s = settings_of<kafka_settings>(box);
    std::vector<std::string> lines{"effective librdkafka consumer properties:"};
    for (const auto& [name, value] : kafka::shown(kafka::consumer_properties(s))) {
      lines.push_back("  " + name + " = " + value);
    }
    lines.push_back("effective librdkafka dead-letter producer properties:");
    for (const auto& [name, value] : kafka::shown(kafka::producer_properties(s))) {
      lines.push_back("  " + name + " = " + value);
    }
    return lines;
  };
  k.create = [](const settings_box& box, const app_config&) {
    const auto& s = settings_of<kafka_settings>(box);
    auto kafka = std::make_shared<kafka_transport>(s, s.startup_timeout);
    spdlog::info("mailroom: consuming {} as group \"{}\" from {}",
                 kafka->settings().topics.size() == 1
                     ? "topic \"" + kafka->settings().topics[0] + "\""
                     : std::to_string(kafka->settings().topics.size()) + " topics",
                 s.group_id, s.brokers);
    transport_instance out;
    out.ordering = s.ordering;
    out.transport = std::move(kafka);
    return out;
  };
  k.open_dlq = [](const settings_box& box,
                  const app_config& cfg) -> std::unique_ptr<dead_letter_queue> {
    return std::make_unique<kafka_dlq>(settings_of<kafka_settings>(box),
                                       idempotency_key_eraser(cfg));
  };
  return k;
}
#endif

#ifdef MAILROOM_WITH_SQS
transport_kind sqs_kind() {
  auto k = kind_of<sqs_transport_settings>("sqs", &sqs_transport_schema,
                                           &sqs_transport_problems);
  k.create = [](const settings_box& box, const app_config&) {
    auto sqs = std::make_shared<sqs_transport>(settings_of<sqs_transport_settings>(box));
    spdlog::info("mailroom: consuming SQS queue {}{} with {} receivers", sqs->queue_url(),
                 sqs->fifo() ? " (FIFO: per_key ordering by message group)" : "",
                 sqs->settings().receivers);
    transport_instance out;
    if (sqs->fifo()) {
      out.ordering = ordering_mode::per_key; // the group is the ordering key
    }
    out.transport = std::move(sqs);
    return out;
  };
  k.open_dlq = [](const settings_box& box,
                  const app_config& cfg) -> std::unique_ptr<dead_letter_queue> {
    return std::make_unique<sqs_dlq>(settings_of<sqs_transport_settings>(box),
                                     idempotency_key_eraser(cfg));
  };
  return k;
}
#endif

} // namespace

const transport_registry& builtin_transports() {
  static const transport_registry registry = [] {
    transport_registry r;
    r.add(memory_kind());
#ifdef MAILROOM_WITH_REDIS
    r.add(redis_streams_kind());
#else
    r.add_unavailable("redis", "this binary was built without Redis");
#endif
#ifdef MAILROOM_WITH_KAFKA
    r.add(kafka_kind());
#else
    r.add_unavailable("kafka", "this binary was built without Kafka");
#endif
#ifdef MAILROOM_WITH_SQS
    r.add(sqs_kind());
#else
    r.add_unavailable("sqs", "this binary was built without SQS");
#endif
    return r;
  }();
  return registry;
}

} // namespace mailroom
