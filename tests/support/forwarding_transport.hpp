#pragma once

// Test support: a transport that forwards every call to another one, and can
// hide the inner transport's leases (a broker without visibility renewal,
// where a slow handler's delivery does time out).

#include <memory>

#include "core/transport.hpp"

namespace mailroom::testing {

/// Forwards to `inner`; with `hide_leases`, reports no lease terms.
class forwarding_transport : public transport {
public:
  forwarding_transport(std::shared_ptr<transport> inner, bool hide_leases)
      : inner_(std::move(inner)), hide_leases_(hide_leases) {}

  const char* name() const override { return inner_->name(); }
  std::string source_id() const override { return inner_->source_id(); }
  bool counts_deliveries() const override { return inner_->counts_deliveries(); }
  void set_revocation_listener(revocation_listener* l) override {
    inner_->set_revocation_listener(l);
  }
  std::optional<std::uint64_t> dead_letter_depth() override {
    return inner_->dead_letter_depth();
  }
  std::vector<std::pair<std::string, std::uint64_t>> stats_report() const override {
    return inner_->stats_report();
  }
  io_result poll(std::size_t max, std::chrono::milliseconds wait,
                 envelope_batch& out) override {
    return inner_->poll(max, wait, out);
  }
  io_result ack(const std::vector<const envelope*>& batch) override {
    return inner_->ack(batch);
  }
  io_result nack(const envelope& msg, std::chrono::milliseconds delay) override {
    return inner_->nack(msg, delay);
  }
  io_result dead_letter(const envelope& msg, const dead_letter_record& record) override {
    return inner_->dead_letter(msg, record);
  }
  std::optional<lease_terms> lease() const override {
    return hide_leases_ ? std::nullopt : inner_->lease();
  }
  io_result extend(const std::vector<const receipt*>& receipts, clock::time_point until,
                   std::vector<std::size_t>& lost) override {
    return inner_->extend(receipts, until, lost);
  }
  bool exhausted() const override { return inner_->exhausted(); }
  io_result close() override { return inner_->close(); }

protected:
  std::shared_ptr<transport> inner_;

private:
  bool hide_leases_;
};

} // namespace mailroom::testing
