#include "core/step_journal.hpp"

#include <exception>

namespace mailroom {

std::string encode_step_value(char kind, const std::string& name, const std::string& result) {
  std::string v;
  v.reserve(8 + name.size() + result.size());
  v.push_back(kind);
  v.append(std::to_string(name.size())).push_back(':');
  v.append(name).append(result);
  return v;
}

bool decode_step_value(const std::string& value, char& kind, std::string& name,
                       std::string& result) {
  auto colon = value.find(':');
  if (value.size() < 3 || colon == std::string::npos || colon < 2 || colon > 11) {
    return false;
  }
  std::size_t len = 0;
  for (std::size_t i = 1; i < colon; ++i) {
    if (value[i] < '0' || value[i] > '9') {
      return false;
    }
    len = len * 10 + static_cast<std::size_t>(value[i] - '0');
  }
  if (colon + 1 + len > value.size()) {
    return false;
  }
  kind = value[0];
  name = value.substr(colon + 1, len);
  result = value.substr(colon + 1 + len);
  return true;
}

step_journal::step_journal(std::string key, checkpoint_store& store, io_retry& retry,
                           step_mode mode, engine_metrics& metrics)
    : key_(std::move(key)), store_(&store), retry_(&retry), mode_(mode),
      metrics_(&metrics) {}

void step_journal::check_cancelled() const {
  if (cancelled_ != nullptr && cancelled_->load(std::memory_order_relaxed)) {
    throw step_cancelled("the engine no longer waits for this call: step not started");
  }
}

io_result step_journal::load() {
  std::vector<checkpoint> found;
  auto r = retry_->run([&] { return store_->load(key_, found); },
                       [this](const io_result&, std::uint32_t) { metrics_->checkpoint_errors.fetch_add(1, std::memory_order_relaxed); });
  if (!r) {
    return r;
  }
  for (auto& c : found) {
    saved s;
    if (!decode_step_value(c.result, s.kind, s.name, s.result)) {
      // Not written by this code: a mismatch rather than a silent re-run.
      s.kind = '?';
      s.name = "(an unreadable checkpoint)";
    }
    saved_.insert_or_assign(std::move(c.step), std::move(s));
  }
  return r;
}

const std::string* step_journal::replay(const std::string& id, char kind,
                                        const std::string& name) {
  auto it = saved_.find(id);
  if (it == saved_.end()) {
    return nullptr;
  }
  if (it->second.kind != kind || it->second.name != name) {
    auto shown = [](char k, const std::string& n) { return k == 'c' ? "child " + n : n; };
    throw replay_mismatch("replay mismatch at " + id + ": expected " +
                          shown(it->second.kind, it->second.name) + ", got " +
                          shown(kind, name));
  }
  if (kind == 's') {
    metrics_->steps_replayed.fetch_add(1, std::memory_order_relaxed);
  }
  return &it->second.result;
}

void step_journal::record(const std::string& id, char kind, const std::string& name,
                          std::string result) {
  if (kind == 's') {
    metrics_->steps_executed.fetch_add(1, std::memory_order_relaxed);
  }
  checkpoint c{key_, id, encode_step_value(kind, name, result)};
  saved_.insert_or_assign(id, saved{kind, name, std::move(result)});
  if (mode_ == step_mode::batch) {
    pending_.push_back(std::move(c));
    return;
  }
  if (auto r = write({c}); !r) {
    pending_.push_back(std::move(c)); // tried again by the final flush
    throw step_store_failure("checkpoint of step " + id + " not written: " + r.what);
  }
}

void step_journal::add_compensation(const std::string& id, const std::string& name,
                                    step_scope::compensate_fn fn, std::string result) {
  compensations_.push_back({id, name, std::move(fn), std::move(result)});
}

io_result step_journal::write(const std::vector<checkpoint>& batch) {
  return retry_->run([&] { return store_->write(batch); },
                     [this](const io_result&, std::uint32_t) { metrics_->checkpoint_errors.fetch_add(1, std::memory_order_relaxed); });
}

io_result step_journal::flush() {
  if (pending_.empty()) {
    return io_result::success();
  }
  auto r = write(pending_);
  if (r) {
    pending_.clear();
  }
  return r;
}

std::string step_journal::run_compensation(const compensation& c) {
  std::string error;
  for (std::uint32_t attempt = 1;; ++attempt) {
    try {
      c.fn(c.result);
      return {};
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "a non-standard exception";
    }
    if (cancelled_ != nullptr && cancelled_->load(std::memory_order_relaxed)) {
      return "compensation of " + c.id + " (" + c.name + ") stopped, the call was cancelled: " +
             error;
    }
    if (attempt > retry_->settings().retries) {
      return "compensation of " + c.id + " (" + c.name + ") failed " +
             std::to_string(attempt) + " times: " + error;
    }
    retry_->wait_after(attempt);
  }
}

std::vector<std::string> step_journal::compensate(const std::string& prefix) {
  std::vector<std::string> failures;
  for (auto it = compensations_.rbegin(); it != compensations_.rend(); ++it) {
    if (it->id.compare(0, prefix.size(), prefix) != 0) {
      continue;
    }
    if (cancelled_ != nullptr && cancelled_->load(std::memory_order_relaxed)) {
      failures.push_back("compensations stopped: the call was cancelled");
      break; // the redelivery runs the rest
    }
    auto undo_id = it->id + "!undo";
    if (replay(undo_id, 'u', it->name) != nullptr) {
      continue; // ran on an earlier delivery
    }
    if (auto failure = run_compensation(*it); !failure.empty()) {
      metrics_->compensation_failures.fetch_add(1, std::memory_order_relaxed);
      failures.push_back(std::move(failure));
      continue;
    }
    metrics_->compensations.fetch_add(1, std::memory_order_relaxed);
    // Checkpointed at once, whatever the mode: a crash later in the undo
    // must not run this one again.
    checkpoint c{key_, undo_id, encode_step_value('u', it->name, {})};
    saved_.insert_or_assign(undo_id, saved{'u', it->name, {}});
    if (auto r = write({c}); !r) {
      pending_.push_back(std::move(c));
    }
  }
  return failures;
}

} // namespace mailroom
