#include "redis_server_cost.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <hiredis/hiredis.h>

namespace mailroom::bench {

namespace {

std::string info(redisContext* c, const char* section) {
  auto* reply = static_cast<redisReply*>(redisCommand(c, "INFO %s", section));
  if (reply == nullptr || reply->type != REDIS_REPLY_STRING) {
    if (reply != nullptr) {
      freeReplyObject(reply);
    }
    throw std::runtime_error(std::string{"INFO "} + section + " failed");
  }
  std::string text{reply->str, reply->len};
  freeReplyObject(reply);
  return text;
}

// "name:value" → value, for the lines of an INFO section.
double field(const std::string& text, const std::string& name) {
  auto at = text.find(name + ":");
  return at == std::string::npos ? 0 : std::stod(text.substr(at + name.size() + 1));
}

} // namespace

redis_server_snapshot snapshot_redis_server(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) {
      redisFree(c);
    }
    throw std::runtime_error("cannot connect to redis-server on port " + std::to_string(port));
  }
  redis_server_snapshot s;
  try {
    auto cpu = info(c, "cpu");
    s.cpu_s = field(cpu, "used_cpu_user") + field(cpu, "used_cpu_sys");
    // cmdstat_<name>:calls=N,usec=U,usec_per_call=...,...
    std::istringstream lines{info(c, "commandstats")};
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("cmdstat_", 0) != 0) {
        continue;
      }
      auto colon = line.find(':');
      auto name = line.substr(8, colon - 8);
      redis_server_snapshot::command cmd;
      auto calls_at = line.find("calls=");
      auto usec_at = line.find(",usec=");
      if (calls_at != std::string::npos && usec_at != std::string::npos) {
        cmd.calls = std::stoull(line.substr(calls_at + 6));
        cmd.usec = std::stod(line.substr(usec_at + 6));
      }
      s.commands[name] = cmd;
    }
  } catch (...) {
    redisFree(c);
    throw;
  }
  redisFree(c);
  return s;
}

nlohmann::json redis_server_cost(const redis_server_snapshot& before,
                                 const redis_server_snapshot& after, std::uint64_t messages) {
  const double n = static_cast<double>(std::max<std::uint64_t>(messages, 1));
  std::vector<nlohmann::json> rows;
  double command_usec = 0;
  for (const auto& [name, a] : after.commands) {
    redis_server_snapshot::command b;
    if (auto it = before.commands.find(name); it != before.commands.end()) {
      b = it->second;
    }
    auto calls = a.calls - std::min(a.calls, b.calls);
    auto usec = a.usec - b.usec;
    if (calls == 0 || name == "info") {
      continue;
    }
    command_usec += usec;
    rows.push_back({{"command", name},
                    {"calls", calls},
                    {"calls_per_msg", static_cast<double>(calls) / n},
                    {"usec_per_call", usec / static_cast<double>(calls)},
                    {"us_per_msg", usec / n}});
  }
  std::sort(rows.begin(), rows.end(), [](const nlohmann::json& x, const nlohmann::json& y) {
    return x["us_per_msg"].get<double>() > y["us_per_msg"].get<double>();
  });
  return {{"cpu_us_per_msg", (after.cpu_s - before.cpu_s) * 1e6 / n},
          {"command_us_per_msg", command_usec / n},
          {"commands", rows}};
}

} // namespace mailroom::bench
