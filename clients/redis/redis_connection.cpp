#include "clients/redis/redis_connection.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>
#include <sys/time.h>

#include "posix/sigpipe_guard.hpp"

namespace mailroom {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  // hiredis treats a zero timeout as "none": never let a setting mean "block forever".
  auto v = std::max<long long>(ms.count(), 1);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(v / 1000);
  tv.tv_usec = static_cast<suseconds_t>((v % 1000) * 1000);
  return tv;
}

// A server that echoes its input must not be able to leak the password
// through one of our error texts.
std::string scrub(std::string text, const std::string& secret) {
  if (secret.empty()) {
    return text;
  }
  for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "***");
  }
  return text;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Sets `status` from the first server error reply, if any.
void classify(redis_replies& out, const std::string& where) {
  out.status = io_result::success();
  for (const auto& reply : out.replies) {
    if (is_error_reply(reply.get())) {
      out.status = io_result::fatal("redis " + where + ": " +
                                    std::string{reply_text(reply.get())});
      return;
    }
  }
}

} // namespace

void redis_context_deleter::operator()(redisContext* context) const noexcept {
  redisFree(context);
}

redis_connection::redis_connection(redis_settings settings)
    : settings_(std::move(settings)), backoff_(settings_.reconnect) {}

redis_connection::~redis_connection() = default;

std::string redis_connection::where() const {
  return settings_.host + ":" + std::to_string(settings_.port);
}

std::string redis_connection::key(std::string_view name) const {
  std::string out;
  out.reserve(settings_.key_prefix.size() + name.size());
  out.append(settings_.key_prefix).append(name);
  return out;
}

bool redis_connection::connected() const {
  std::lock_guard<std::mutex> lock{mutex_};
  return context_ != nullptr;
}

io_result redis_connection::connect() {
  std::lock_guard<std::mutex> lock{mutex_};
  return ensure_connected(false);
}

io_result redis_connection::ensure_connected(bool gated) {
  if (context_) {
    return io_result::success();
  }
  auto now = clock::now();
  if (gated && failures_ > 0 && now < retry_at_) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - now);
    return {last_failure_.failure, last_failure_.what + "; next reconnect attempt in " +
                                       std::to_string(wait.count()) + " ms"};
  }
  auto r = open();
  if (r) {
    failures_ = 0;
    return r;
  }
  ++failures_;
  retry_at_ = clock::now() + backoff_.delay(failures_);
  // One line per outage, not one per call.
  if (failures_ == 1) {
    spdlog::warn("{}", r.what);
  }
  last_failure_ = r;
  return r;
}

io_result redis_connection::open() {
  context_ptr ctx{redisConnectWithTimeout(settings_.host.c_str(), settings_.port,
                                          to_timeval(settings_.connect_timeout))};
  if (!ctx) {
    return io_result::transient("redis " + where() + ": cannot allocate a connection");
  }
  if (ctx->err != 0) {
    return io_result::transient("redis " + where() + ": connect failed: " + ctx->errstr);
  }
  if (redisSetTimeout(ctx.get(), to_timeval(settings_.command_timeout)) != REDIS_OK) {
    return io_result::transient("redis " + where() +
                                ": setting the timeout failed: " + ctx->errstr);
  }
  if (settings_.keep_alive && redisEnableKeepAlive(ctx.get()) != REDIS_OK) {
    return io_result::transient("redis " + where() +
                                ": enabling keep-alive failed: " + ctx->errstr);
  }
  std::string password;
  bool authenticate = !settings_.password_env.empty();
  if (authenticate) {
    const char* value = std::getenv(settings_.password_env.c_str());
    if (value == nullptr) {
      return io_result::fatal("redis " + where() + ": environment variable " +
                              settings_.password_env + " (the password) is not set");
    }
    password = value;
  }
  auto db = std::to_string(settings_.db);
  redis_pipeline handshake;
  // One allocation, so wipe() reaches the only copy the pipeline made.
  // (hiredis's own output buffer is freed without being wiped.)
  handshake.reserve(256 + settings_.username.size() + password.size());
  std::vector<std::string_view> sent; // the name of each command, for errors
  if (authenticate && settings_.username.empty()) {
    handshake.add({"AUTH", password});
  } else if (authenticate) {
    handshake.add({"AUTH", settings_.username, password});
  }
  if (authenticate) {
    sent.push_back("AUTH");
  }
  if (settings_.db != 0) {
    handshake.add({"SELECT", db});
    sent.push_back("SELECT");
  }
  handshake.add({"PING"});
  sent.push_back("PING");

  context_ = std::move(ctx);
  std::vector<reply_ptr> replies;
  bool timed_out = false;
  auto r = exchange(handshake, replies, &timed_out);
  handshake.wipe();
  std::string secret = std::move(password);
  auto wipe = [&] { explicit_bzero(secret.data(), secret.size()); };
  if (!r) {
    context_.reset();
    wipe();
    return io_result::transient("redis " + where() + ": handshake failed: " + r.what);
  }
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (!is_error_reply(replies[i].get())) {
      continue;
    }
    auto text = scrub(std::string{reply_text(replies[i].get())}, secret);
    auto first = sent[i];
    std::string why;
    if (first == "AUTH") {
      why = settings_.username.empty()
                ? "AUTH refused: "
                : "AUTH as user " + settings_.username + " refused: ";
    } else if (first == "SELECT") {
      why = "SELECT " + db + " refused: ";
    } else if (starts_with(text, "NOAUTH")) {
      why =
          "the server requires authentication (set password_env, and username for an ACL "
          "user): ";
    } else {
      why = "PING refused: ";
    }
    context_.reset();
    wipe();
    return io_result::fatal("redis " + where() + ": " + why + text);
  }
  wipe();
  return io_result::success();
}

io_result redis_connection::exchange(const redis_pipeline& commands,
                                     std::vector<reply_ptr>& out, bool* timed_out) {
  *timed_out = false;
  out.clear();
  if (redisAppendFormattedCommand(context_.get(), commands.wire().data(),
                                  commands.wire().size()) != REDIS_OK) {
    return io_result::transient(std::string{"buffering commands failed: "} +
                                context_->errstr);
  }
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  sigpipe_guard guard;
  out.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    if (redisGetReply(context_.get(), &raw) != REDIS_OK) {
      int err = errno;
      *timed_out = context_->err == REDIS_ERR_IO && (err == EAGAIN || err == EWOULDBLOCK);
      if (*timed_out) {
        return io_result::transient("timed out after " +
                                    std::to_string(settings_.command_timeout.count()) +
                                    " ms");
      }
      return io_result::transient(std::string{"I/O error: "} + context_->errstr);
    }
    out.emplace_back(static_cast<redisReply*>(raw));
  }
  return io_result::success();
}

void redis_connection::drop(const std::string& why) {
  if (context_) {
    context_.reset();
    spdlog::warn("redis {}: connection lost ({}); reconnecting", where(), why);
  }
}

redis_replies redis_connection::run(const redis_pipeline& commands) {
  redis_replies out;
  bool was_connected = context_ != nullptr;
  if (auto r = ensure_connected(true); !r) {
    out.status = r;
    note_failed_call();
    return out;
  }
  bool timed_out = false;
  auto r = exchange(commands, out.replies, &timed_out);
  // A socket that was idle since the last call may have died with a
  // restarted server: that alone deserves one fresh attempt. A timeout does
  // not, or a hung server would cost the caller twice the timeout.
  if (!r && was_connected && !timed_out) {
    drop(r.what);
    if (auto c = ensure_connected(true); !c) {
      out.replies.clear();
      out.status = c;
      note_failed_call();
      return out;
    }
    r = exchange(commands, out.replies, &timed_out);
  }
  if (!r) {
    drop(r.what);
    out.replies.clear();
    out.status = io_result::transient("redis " + where() + ": " + r.what);
    note_failed_call();
    return out;
  }
  note_answered();
  classify(out, where());
  return out;
}

void redis_connection::note_failed_call() {
  if (outage_since_ == clock::time_point{}) {
    outage_since_ = clock::now();
  }
  ++outage_failed_calls_;
}

void redis_connection::note_answered() {
  if (outage_since_ == clock::time_point{}) {
    return;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() -
                                                                  outage_since_);
  spdlog::warn("redis {}: answering again after {:.1f} s; {} calls failed meanwhile",
               where(), static_cast<double>(ms.count()) / 1000.0, outage_failed_calls_);
  outage_since_ = {};
  outage_failed_calls_ = 0;
}

redis_replies redis_connection::send(const redis_pipeline& commands) {
  if (commands.empty()) {
    return {};
  }
  std::lock_guard<std::mutex> lock{mutex_};
  return run(commands);
}

redis_replies redis_connection::pipeline(const std::vector<redis_command>& commands) {
  redis_pipeline p;
  for (const auto& cmd : commands) {
    p.add(cmd);
  }
  return send(p);
}

redis_replies redis_connection::command(const redis_command& command) {
  redis_pipeline p;
  p.add(command);
  return send(p);
}

redis_script_id redis_connection::add_script(std::string source) {
  std::lock_guard<std::mutex> lock{mutex_};
  scripts_.push_back({std::move(source), {}});
  return scripts_.size() - 1;
}

redis_replies redis_connection::evalsha(redis_script_id id,
                                        const std::vector<std::string>& keys,
                                        const std::vector<std::string>& args) {
  std::lock_guard<std::mutex> lock{mutex_};
  redis_replies out;
  if (id >= scripts_.size()) {
    out.status = io_result::fatal("redis: unknown script id " + std::to_string(id));
    return out;
  }
  script& s = scripts_[id];
  redis_pipeline load;
  load.add({"SCRIPT", "LOAD", s.source});
  if (s.sha.empty()) {
    out = run(load);
    if (!out) {
      return out;
    }
    s.sha = std::string{reply_text(out.replies[0].get())};
  }
  auto numkeys = std::to_string(keys.size());
  std::vector<std::string_view> call{"EVALSHA", s.sha, numkeys};
  call.reserve(3 + keys.size() + args.size());
  call.insert(call.end(), keys.begin(), keys.end());
  call.insert(call.end(), args.begin(), args.end());
  redis_pipeline one;
  one.add(call);
  out = run(one);
  bool unknown = out.replies.size() == 1 && is_error_reply(out.replies[0].get()) &&
                 starts_with(reply_text(out.replies[0].get()), "NOSCRIPT");
  if (unknown) {
    // The server lost its script cache (restart, SCRIPT FLUSH): load and run
    // in one round trip; the SHA of the same source does not change.
    load.add(call);
    out = run(load);
    if (out.replies.size() == 2 && !is_error_reply(out.replies[0].get())) {
      out.replies.erase(out.replies.begin());
      classify(out, where());
    }
  }
  return out;
}

} // namespace mailroom
