#include "app/generator_source.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace mailroom {

namespace {

constexpr std::size_t batch_size = 256;
// A batch also ends at this many payload bytes, so big payloads are built a
// few at a time rather than 256 of them ahead of the transport's room.
constexpr std::size_t batch_bytes = std::size_t{4} << 20;
constexpr std::size_t recent_keys = 1000;

enum class kind : std::uint8_t { clean, poison, flaky, duplicate };

struct message_draw {
  kind k;
  std::uint64_t key_index;
};

// Draws each message's kind. splitmix64 rather than <random> distributions, whose
// output differs between standard libraries: the same seed gives the same stream
// anywhere.
class draw_sequence {
public:
  explicit draw_sequence(const generator_settings& s) : s_(s), state_(s.seed) {
    recent_.reserve(recent_keys);
  }

  message_draw next(std::uint64_t i) {
    // One uniform draw split into disjoint intervals, so each kind occurs with
    // exactly its ratio; always two draws, so a ratio change keeps the stream aligned.
    double u = unit();
    std::uint64_t pick = bits();
    if (u < s_.poison_ratio) {
      return {kind::poison, i};
    }
    u -= s_.poison_ratio;
    if (u < s_.flaky_ratio) {
      return {kind::flaky, i};
    }
    u -= s_.flaky_ratio;
    if (u < s_.duplicate_ratio && !recent_.empty()) {
      return {kind::duplicate, recent_[pick % recent_.size()]};
    }
    if (recent_.size() < recent_keys) {
      recent_.push_back(i);
    } else {
      recent_[next_slot_] = i;
      next_slot_ = (next_slot_ + 1) % recent_keys;
    }
    return {kind::clean, i};
  }

private:
  std::uint64_t bits() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  double unit() { return static_cast<double>(bits() >> 11) * 0x1.0p-53; }

  const generator_settings& s_;
  std::uint64_t state_;
  std::vector<std::uint64_t> recent_;
  std::size_t next_slot_ = 0;
};

std::string make_payload(std::uint64_t n, kind k, std::uint32_t bytes) {
  std::string p;
  p.reserve(bytes + 48);
  p += "{\"n\":";
  p += std::to_string(n);
  if (k == kind::poison) {
    p += ",\"pad\":\"";
    if (p.size() < bytes) {
      p.append(bytes - p.size(), 'x');
    }
    return p; // unterminated string and object: malformed on purpose
  }
  p += k == kind::flaky ? ",\"fail_attempts\":1,\"pad\":\""
                        : ",\"fail_attempts\":0,\"pad\":\"";
  if (p.size() + 2 < bytes) {
    p.append(bytes - p.size() - 2, 'x');
  }
  p += "\"}";
  return p;
}

void count(generator_counts& c, kind k) {
  ++c.messages;
  if (k == kind::poison) {
    ++c.poison;
  } else if (k == kind::flaky) {
    ++c.flaky;
  } else if (k == kind::duplicate) {
    ++c.duplicates;
  }
}

} // namespace

generator_source::generator_source(memory_transport& target, generator_settings s)
    : target_(target), settings_(std::move(s)) {
  if (settings_.topics.empty()) {
    settings_.topics = {"orders"};
  }
}

generator_source::~generator_source() {
  stop();
  join();
}

void generator_source::start() {
  if (thread_.joinable() || finished()) {
    return;
  }
  thread_ = std::thread([this] { run(); });
}

void generator_source::stop() {
  stop_.store(true, std::memory_order_relaxed);
}

void generator_source::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

generator_counts generator_source::expected() const {
  generator_counts c;
  c.messages = published_.load(std::memory_order_relaxed);
  c.poison = poison_.load(std::memory_order_relaxed);
  c.flaky = flaky_.load(std::memory_order_relaxed);
  c.duplicates = duplicates_.load(std::memory_order_relaxed);
  return c;
}

generator_counts generator_source::plan(const generator_settings& s) {
  draw_sequence draws{s};
  generator_counts c;
  for (std::uint64_t i = 0; i < s.messages; ++i) {
    count(c, draws.next(i).k);
  }
  return c;
}

void generator_source::run() {
  draw_sequence draws{settings_};
  const auto& topics = settings_.topics;
  std::vector<envelope> batch;
  std::vector<kind> kinds;
  batch.reserve(batch_size);
  kinds.reserve(batch_size);
  std::uint64_t i = 0;
  bool open = true;
  while (open && i < settings_.messages && !stop_.load(std::memory_order_relaxed)) {
    batch.clear();
    kinds.clear();
    std::size_t bytes = 0;
    for (; i < settings_.messages && batch.size() < batch_size && bytes < batch_bytes; ++i) {
      message_draw d = draws.next(i);
      envelope& e = batch.emplace_back();
      e.id = "m-" + std::to_string(i);
      e.key = "k-" + std::to_string(d.key_index);
      e.topic = topics[i % topics.size()];
      e.payload = make_payload(i, d.k, settings_.payload_bytes);
      bytes += e.payload.size();
      kinds.push_back(d.k);
    }
    std::size_t pos = 0;
    // Short waits so stop() is noticed while the transport is full.
    while (pos < batch.size() && !stop_.load(std::memory_order_relaxed)) {
      std::size_t n = target_.publish_some(batch, pos, std::chrono::milliseconds(50));
      generator_counts c;
      for (std::size_t k = pos; k < pos + n; ++k) {
        count(c, kinds[k]);
      }
      poison_.fetch_add(c.poison, std::memory_order_relaxed);
      flaky_.fetch_add(c.flaky, std::memory_order_relaxed);
      duplicates_.fetch_add(c.duplicates, std::memory_order_relaxed);
      published_.fetch_add(c.messages, std::memory_order_relaxed);
      pos += n;
      if (n == 0 && !target_.accepts_input()) {
        open = false;
        break;
      }
    }
  }
  target_.close_input();
  finished_.store(true, std::memory_order_release);
}

} // namespace mailroom
