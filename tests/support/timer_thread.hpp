#pragma once

// Test and bench support: one thread that runs callbacks once their delay
// has passed, the stand-in for an asynchronous client (an HTTP or database
// driver completing requests on its own thread).

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace mailroom::testing {

/// Runs each callback on its own thread at its due time, in due order.
class timer_thread {
public:
  using clock = std::chrono::steady_clock;

  timer_thread() : thread_([this] { run(); }) {}

  /// Runs what is due, then stops; callbacks not yet due are dropped.
  ~timer_thread() {
    {
      std::lock_guard<std::mutex> g{mutex_};
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  timer_thread(const timer_thread&) = delete;
  timer_thread& operator=(const timer_thread&) = delete;

  /// Runs `fn` on the timer's thread `delay` from now.
  void after(std::chrono::microseconds delay, std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> g{mutex_};
      due_.emplace(clock::now() + delay, std::move(fn));
    }
    wake_.notify_all();
  }

private:
  void run() {
    std::unique_lock<std::mutex> g{mutex_};
    while (!done_) {
      if (due_.empty()) {
        wake_.wait(g);
        continue;
      }
      auto first = due_.begin();
      if (first->first > clock::now()) {
        wake_.wait_until(g, first->first);
        continue;
      }
      auto fn = std::move(first->second);
      due_.erase(first);
      g.unlock();
      fn();
      g.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<clock::time_point, std::function<void()>> due_;
  bool done_ = false;
  std::thread thread_;
};

} // namespace mailroom::testing
