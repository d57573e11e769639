#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/transport.hpp"
#include "transports/kafka/kafka_dlq_producer.hpp"
#include "transports/kafka/kafka_settings.hpp"
#include "transports/kafka/partition_buffer.hpp"

namespace mailroom {

/// A point-in-time copy of a kafka_transport's counters.
struct kafka_stats {
  std::uint64_t fetched = 0;       ///< Records received from the brokers.
  std::uint64_t acked = 0;         ///< Offsets settled by acks.
  std::uint64_t retried = 0;       ///< Records handed back to wait here (retries, unstarted).
  std::uint64_t dead_lettered = 0; ///< Records written to a dead-letter topic.
  std::uint64_t stale_settles = 0; ///< Settles of partitions no longer ours.
  std::uint64_t commits = 0;       ///< Offset commits that succeeded.
  std::uint64_t commit_errors = 0; ///< Offset commits that failed (retried).
  std::uint64_t rebalances = 0;    ///< Assignments and revocations served.
  std::uint64_t pauses = 0;        ///< Partitions paused because their buffer filled.
  std::uint64_t dropped = 0;       ///< Buffered records dropped at a revocation.
};

/// A transport on Kafka topics read through a consumer group (librdkafka).
///
/// Mapping onto the transport calls:
///
/// - A thread the transport owns runs the librdkafka consumer loop: it calls
///   `rd_kafka_consumer_poll` every 100 ms whatever the engine does (so
///   `max.poll.interval.ms` is never exceeded by slow handlers), buffers
///   what it fetches per partition (pausing a partition whose buffer holds
///   `buffer_per_partition` records, resuming it at half), serves
///   rebalances and commits. `poll` only takes from those buffers.
/// - Envelopes: id `<topic>/<partition>/<offset>`, key the `key_header`
///   header or else the id, ordering key the record key, headers the
///   record's, payload its value (empty for a null value). The broker keeps
///   no delivery count: `counts_deliveries()` is false and the engine counts
///   them in its attempt log, dead-lettering a record past `max_deliveries`.
/// - Offsets: auto commit is off. Each partition commits its lowest
///   unsettled offset (or one past the highest fetched when none is), every
///   `commit_interval` or `commit_max_messages` settles, asynchronously; at
///   a revocation and at close, synchronously. A record settled out of
///   order never moves a commit past a lower unsettled one.
/// - `nack` keeps the record in the process until its delay passed, then
///   delivers it again; meanwhile it holds back what its ordering mode
///   orders it with (its partition, its key, or nothing) and its offset
///   stays uncommitted.
/// - `dead_letter` produces the record (its key, headers, the masked payload
///   and `mailroom.*` headers) to the dead-letter topic and settles the
///   offset once the broker confirmed the write.
/// - Rebalances (eager or cooperative-sticky): before partitions go, their
///   buffered records are dropped, the engine is told (it drops what waits
///   and waits up to `revoke_timeout` for what runs), the settled offsets
///   are committed, then they are given up. A settle of a partition that is
///   no longer this consumer's is stale and commits nothing.
///
/// Thread-safe.
class kafka_transport final : public transport {
public:
  /// Creates the consumer, checks that the brokers answer and the topics
  /// (and dead-letter topics) exist within `startup_timeout`, subscribes and
  /// starts the consumer thread. Throws std::invalid_argument for bad
  /// settings and std::runtime_error when the brokers cannot be reached or a
  /// topic is missing.
  explicit kafka_transport(kafka_settings settings,
                           std::chrono::milliseconds startup_timeout = std::chrono::seconds{10});

  /// Closes the transport if close() was not called.
  ~kafka_transport() override;

  kafka_transport(const kafka_transport&) = delete;
  kafka_transport& operator=(const kafka_transport&) = delete;

  const char* name() const override { return "kafka"; }

  /// Returns "kafka:<group>:<topic,topic...>".
  std::string source_id() const override;

  io_result poll(std::size_t max, std::chrono::milliseconds wait,
                 envelope_batch& out) override;
  io_result ack(const std::vector<const envelope*>& batch) override;
  io_result ack_checked(const std::vector<const envelope*>& batch,
                        std::vector<std::size_t>& stale) override;
  io_result nack(const envelope& msg, std::chrono::milliseconds delay) override;
  io_result dead_letter(const envelope& msg, const dead_letter_record& record) override;

  /// False: Kafka keeps no delivery count; the engine counts each handler
  /// start in its attempt log.
  bool counts_deliveries() const override { return false; }
  /// A retried record waits in its partition at its offset (partition_buffer).
  bool retries_keep_order() const override { return true; }

  /// Returns `max_deliveries`.
  std::uint32_t delivery_limit() const override { return settings_.max_deliveries; }

  void set_revocation_listener(revocation_listener* listener) override;

  /// Returns the records the dead-letter topics hold (high minus low
  /// watermark over their partitions), or nullopt when the brokers do not
  /// answer.
  std::optional<std::uint64_t> dead_letter_depth() override;

  /// Asks the brokers for metadata (on the dead-letter producer's handle,
  /// which lives as long as the transport); names them when they do not
  /// answer.
  std::string unreachable(std::chrono::milliseconds timeout) override;

  /// Returns the commits, rebalances and dropped records of the run.
  std::vector<std::pair<std::string, std::uint64_t>> stats_report() const override;
  std::vector<transport_gauge> gauges() const override;

  /// Commits what is settled, leaves the group (bounded by `close_timeout`)
  /// and stops the consumer thread. Later polls return empty.
  io_result close() override;

  /// Returns a copy of the counters.
  kafka_stats stats() const;

  /// Waits until this consumer has partitions assigned, at most `limit`.
  bool wait_for_assignment(std::chrono::milliseconds limit) const;

  /// Returns the settings in use.
  const kafka_settings& settings() const { return settings_; }

private:
  using partition_key = std::pair<std::string, std::int32_t>;
  struct counters;

  static void on_rebalance_cb(rd_kafka_t*, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t* parts, void* opaque);
  static void on_commit_cb(rd_kafka_t*, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* offsets, void* opaque);
  static void on_error_cb(rd_kafka_t*, int err, const char* reason, void* opaque);

  void check_topics(std::chrono::milliseconds timeout);
  void run();
  void receive_locked(rd_kafka_message_t* m);
  envelope envelope_of(const rd_kafka_message_t* m, std::uint64_t generation) const;
  void assign(rd_kafka_topic_partition_list_t* parts);
  void revoke(rd_kafka_topic_partition_list_t* parts);
  void commit(bool sync, const std::vector<partition_key>* only = nullptr);
  void commit_when_due();
  void pause_and_resume();
  bool holding_back();
  void close_consumer();
  kafka::partition_buffer* owned_locked(const envelope& msg);
  void settled_locked(std::size_t n);

  const kafka_settings settings_;
  const bool cooperative_;
  rd_kafka_t* rk_ = nullptr;
  std::unique_ptr<kafka::dlq_producer> dlq_;

  std::atomic<bool> any_paused_{false}; // a partition is paused (buffer full)
  /// How long a buffer may stay full before its partition is paused.
  static constexpr std::chrono::milliseconds pause_after{500};
  mutable std::mutex mutex_; // guards everything below
  std::condition_variable drained_; // poll() took records from a buffer
  clock::time_point full_since_{}; // a buffer has been full since (epoch: none is)
  std::condition_variable readable_;
  mutable std::condition_variable assigned_cv_;
  std::map<partition_key, kafka::partition_buffer> partitions_;
  std::size_t next_partition_ = 0; // round-robin start of the next take
  std::uint64_t generation_ = 0;
  std::uint64_t settled_since_commit_ = 0;
  clock::time_point last_commit_ = clock::now();
  bool commits_held_ = false; // cooperative: between a revocation and the next assignment
  bool ever_assigned_ = false;
  bool closing_ = false;
  std::string fatal_;
  revocation_listener* listener_ = nullptr;
  std::unique_ptr<counters> counters_;

  std::atomic<bool> stop_{false};
  std::thread consumer_thread_;
  bool closed_ = false; // close() ran (guarded by close_mutex_)
  std::mutex close_mutex_;
};

} // namespace mailroom
