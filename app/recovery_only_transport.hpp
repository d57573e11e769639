#pragma once

// The transport `mailroom sweep` gives its engine: the configured one for
// settling what the sweeper recovers (ack, nack, dead-letter), but polled for
// nothing new, and exhausted once the sweep's work is in.

#include <atomic>
#include <memory>
#include <thread>

#include "core/transport.hpp"

namespace mailroom {

/// Forwards settles to `inner`; polls deliver nothing; exhausted() once
/// finish() was called, so the engine stops when what it holds is settled.
class recovery_only_transport final : public transport {
public:
  explicit recovery_only_transport(std::shared_ptr<transport> inner)
      : inner_(std::move(inner)) {}

  /// Lets the engine stop once it holds nothing.
  void finish() { finished_.store(true); }

  const char* name() const override { return inner_->name(); }
  std::string source_id() const override { return inner_->source_id(); }
  bool counts_deliveries() const override { return inner_->counts_deliveries(); }
  bool retries_keep_order() const override { return inner_->retries_keep_order(); }
  std::uint32_t delivery_limit() const override { return inner_->delivery_limit(); }
  io_result poll(std::size_t, std::chrono::milliseconds wait, envelope_batch&) override {
    std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds{50}));
    return io_result::success();
  }
  io_result ack(const std::vector<const envelope*>& batch) override {
    return inner_->ack(batch);
  }
  io_result ack_checked(const std::vector<const envelope*>& batch,
                        std::vector<std::size_t>& stale) override {
    return inner_->ack_checked(batch, stale);
  }
  io_result nack(const envelope& msg, std::chrono::milliseconds delay) override {
    return inner_->nack(msg, delay);
  }
  io_result dead_letter(const envelope& msg, const dead_letter_record& record) override {
    return inner_->dead_letter(msg, record);
  }
  std::optional<std::uint64_t> dead_letter_depth() override {
    return inner_->dead_letter_depth();
  }
  bool exhausted() const override { return finished_.load(); }
  io_result close() override { return inner_->close(); }

private:
  std::shared_ptr<transport> inner_;
  std::atomic<bool> finished_{false};
};

} // namespace mailroom
