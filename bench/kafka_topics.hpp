#pragma once

// The Kafka benchmark's view of the broker as an operator has it: topics
// created through librdkafka's admin API, end offsets and a group's
// committed offsets. (tests/support/kafka_admin.hpp does the same for the
// tests, but reports through Boost.Test; these throw.)

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mailroom::bench {

/// Creates every (name, partitions) topic on `brokers` (replication factor
/// 1) in one CreateTopics request and waits until each shows in the
/// metadata with its partitions. Throws std::runtime_error naming what
/// failed.
void create_topics(const std::string& brokers,
                   const std::vector<std::pair<std::string, int>>& topics);

/// Returns the end (high watermark) offsets of partitions 0..n-1 of `topic`.
/// Throws std::runtime_error when the broker does not answer.
std::vector<std::int64_t> end_offsets(const std::string& brokers, const std::string& topic,
                                      int partitions);

/// Returns the offsets `group` committed for partitions 0..n-1 of `topic`
/// (negative where none is). Throws std::runtime_error when the broker does
/// not answer.
std::vector<std::int64_t> committed_offsets(const std::string& brokers,
                                            const std::string& group,
                                            const std::string& topic, int partitions);

/// Returns the sum of `offsets`, counting negative entries as 0.
std::uint64_t offset_sum(const std::vector<std::int64_t>& offsets);

} // namespace mailroom::bench
