// A `mailroom` binary with one more transport, registered and nothing else:
// the proof that adding a transport to the command takes its settings, its
// factory and one registration. tests/unit/fake_transport_cli_test.cpp runs
// it. The transport hands out `messages` numbered messages and counts what
// happens to them.

#include <atomic>
#include <mutex>

#include "app/app_config.hpp"
#include "app/cli.hpp"
#include "app/transport_registry.hpp"
#include "core/settings_schema.hpp"
#include "core/transport.hpp"

namespace {

using namespace mailroom;

struct fake_settings {
  std::uint64_t messages = 10;       ///< Messages handed out in all.
  std::string prefix = "fake";       ///< Prefix of message ids.
  std::string api_secret = "hidden"; ///< A secret, never rendered.
};

const settings_schema<fake_settings>& fake_schema() {
  static const auto schema = [] {
    settings_schema<fake_settings> s;
    s.integer("messages", &fake_settings::messages, 0, 1'000'000, "Messages handed out")
        .text("prefix", &fake_settings::prefix, "Prefix of message ids",
              plain_text("a non-empty prefix", true))
        .text("api_secret", &fake_settings::api_secret, "A secret")
        .secret();
    return s;
  }();
  return schema;
}

class fake_transport final : public transport {
public:
  explicit fake_transport(fake_settings s) : settings_(std::move(s)) {}
  const char* name() const override { return "fake"; }
  io_result poll(std::size_t max, std::chrono::milliseconds, envelope_batch& out) override {
    std::lock_guard<std::mutex> g{mutex_};
    ++polls_;
    for (std::size_t i = 0; i < max && next_ < settings_.messages; ++i, ++next_) {
      envelope m;
      m.id = settings_.prefix + "-" + std::to_string(next_);
      m.key = m.id;
      m.topic = "orders";
      m.payload = "{}";
      m.handle.seq = next_;
      out.push_back(std::move(m));
    }
    return io_result::success();
  }
  io_result ack(const std::vector<const envelope*>& batch) override {
    std::lock_guard<std::mutex> g{mutex_};
    acked_ += batch.size();
    return io_result::success();
  }
  io_result nack(const envelope&, std::chrono::milliseconds) override {
    return io_result::success();
  }
  io_result dead_letter(const envelope&, const dead_letter_record&) override {
    return io_result::success();
  }
  bool exhausted() const override {
    std::lock_guard<std::mutex> g{mutex_};
    return next_ >= settings_.messages && acked_ >= settings_.messages;
  }
  io_result close() override { return io_result::success(); }
  std::vector<std::pair<std::string, std::uint64_t>> stats_report() const override {
    std::lock_guard<std::mutex> g{mutex_};
    return {{"fake polls", polls_}, {"fake acked", acked_}};
  }

private:
  fake_settings settings_;
  mutable std::mutex mutex_;
  std::uint64_t next_ = 0, acked_ = 0, polls_ = 0;
};

transport_kind fake_kind() {
  transport_kind k;
  k.name = "fake";
  k.settings = [] { return std::make_unique<typed_settings_box<fake_settings>>(fake_schema()); };
  k.problems = [](const settings_box&, const app_config&) {
    return std::vector<setting_problem>{};
  };
  k.create = [](const settings_box& box, const app_config&) {
    transport_instance out;
    out.transport =
        std::make_shared<fake_transport>(*static_cast<const fake_settings*>(box.data()));
    return out;
  };
  return k;
}

} // namespace

int main(int argc, char** argv) {
  auto registry = builtin_transports();
  registry.add(fake_kind());
  return run_cli(argc, argv, registry);
}
