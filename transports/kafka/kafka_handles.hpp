#pragma once

// Owning handles for librdkafka's C objects, as cppkafka wraps them: a
// unique_ptr with the matching destroy function, so no path leaks one.

#include <memory>

#include <librdkafka/rdkafka.h>

namespace mailroom::kafka {

struct conf_deleter {
  void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
struct partition_list_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
struct message_deleter {
  void operator()(rd_kafka_message_t* m) const noexcept { rd_kafka_message_destroy(m); }
};
struct error_deleter {
  void operator()(rd_kafka_error_t* e) const noexcept { rd_kafka_error_destroy(e); }
};
struct queue_deleter {
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
};

using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;
using partition_list_ptr =
    std::unique_ptr<rd_kafka_topic_partition_list_t, partition_list_deleter>;
using message_ptr = std::unique_ptr<rd_kafka_message_t, message_deleter>;
using error_ptr = std::unique_ptr<rd_kafka_error_t, error_deleter>;
using queue_ptr = std::unique_ptr<rd_kafka_queue_t, queue_deleter>;

/// Returns a new, empty partition list with room for `n`.
inline partition_list_ptr make_partition_list(int n = 4) {
  return partition_list_ptr{rd_kafka_topic_partition_list_new(n)};
}

} // namespace mailroom::kafka
