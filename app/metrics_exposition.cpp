#include "app/metrics_exposition.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/process_stats.hpp"

namespace mailroom {

std::string escaped_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// The shortest text that reads back as `v` ("0.0025", not "0.0025000000000000001").
std::string number(double v) {
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) {
      break;
    }
  }
  return buf;
}

template <class T, class = std::enable_if_t<std::is_integral<T>::value>>
std::string number(T v) {
  return std::to_string(v);
}

// Writes one metric family: its HELP and TYPE lines, then its samples.
class family_writer {
public:
  family_writer(std::string& out, std::string labels) : out_(out), labels_(std::move(labels)) {}

  void header(const std::string& name, const char* type, const std::string& help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }

  template <class T>
  void sample(const std::string& name, T value, const std::string& extra = {}) {
    out_ += name + "{" + labels_ + (extra.empty() ? "" : "," + extra) + "} " + number(value) +
            "\n";
  }

  template <class T>
  void single(const std::string& name, const char* type, const std::string& help, T value) {
    header(name, type, help);
    sample(name, value);
  }

  void histogram(const std::string& name, const std::string& help,
                 const latency_buckets& b) {
    header(name, "histogram", help);
    for (std::size_t i = 0; i < b.at_most.size(); ++i) {
      auto le = number(static_cast<double>(latency_buckets::bounds_us[i]) / 1e6);
      sample(name + "_bucket", b.at_most[i], "le=\"" + le + "\"");
    }
    sample(name + "_bucket", b.count, "le=\"+Inf\"");
    sample(name + "_sum", static_cast<double>(b.sum_us) / 1e6);
    sample(name + "_count", b.count);
  }

private:
  std::string& out_;
  std::string labels_;
};

// Whether counter `name` is written per topic (write_by_topic) instead.
bool by_topic(std::string_view name) {
#define MAILROOM_IS_TOPIC_COUNTER(topic_name, help)                                     \
  if (name == #topic_name) {                                                           \
    return true;                                                                       \
  }
  MAILROOM_TOPIC_COUNTERS(MAILROOM_IS_TOPIC_COUNTER)
#undef MAILROOM_IS_TOPIC_COUNTER
  return false;
}

// The per-topic counters: one family each, a sample per topic counted so far
// (none before the first message), labelled `topic` beside `transport`.
void write_by_topic(family_writer& w, const std::vector<topic_counts>& topics) {
  std::vector<std::string> labels;
  labels.reserve(topics.size());
  for (const auto& t : topics) {
    labels.push_back("topic=\"" + escaped_label_value(t.topic) + "\"");
  }
  auto family = [&](topic_counter c, const std::string& name, const char* help) {
    w.header(name, "counter", help);
    for (std::size_t i = 0; i < topics.size(); ++i) {
      w.sample(name, topics[i][c], labels[i]);
    }
  };
#define MAILROOM_EXPOSE_TOPIC_COUNTER(name, help)                                       \
  family(topic_counter::name, "mailroom_" #name "_total", help);
  MAILROOM_TOPIC_COUNTERS(MAILROOM_EXPOSE_TOPIC_COUNTER)
#undef MAILROOM_EXPOSE_TOPIC_COUNTER
}

void write_engine(family_writer& w, const exposition_input& in) {
  const auto& m = in.metrics;
  // Store and transport errors are one family each with a `class` label
  // (transient, fatal, poison); the counters of the classes feed it.
  auto by_class = [&w](const std::string& name, const char* help, std::uint64_t transient,
                       std::uint64_t fatal, std::uint64_t poison) {
    w.header(name, "counter", help);
    w.sample(name, transient, "class=\"transient\"");
    w.sample(name, fatal, "class=\"fatal\"");
    w.sample(name, poison, "class=\"poison\"");
  };
#define MAILROOM_EXPOSE_COUNTER(name, help)                                             \
  if (!by_topic(#name) && std::string_view{#name}.rfind("store_errors", 0) != 0 &&     \
      std::string_view{#name}.rfind("transport_errors", 0) != 0) {                     \
    w.single("mailroom_" #name "_total", "counter", help, m.name);                     \
  }
  MAILROOM_ENGINE_COUNTERS(MAILROOM_EXPOSE_COUNTER)
#undef MAILROOM_EXPOSE_COUNTER
  write_by_topic(w, m.topics);
  by_class("mailroom_store_errors_total",
           "Store calls that failed, by failure class (an unavailable store is transient)",
           m.store_errors_transient, m.store_errors_fatal, 0);
  by_class("mailroom_transport_errors_total", "Transport calls that failed, by failure class",
           m.transport_errors_transient, m.transport_errors_fatal, m.transport_errors_poison);
  w.single("mailroom_settled_total", "counter",
           "Messages settled one way or another (acked, retried, deferred, dead-lettered, "
           "rejected, revoked, fenced, ack failures)",
           m.settled());
  w.single("mailroom_in_flight", "gauge", "Messages in the engine now", m.in_flight);
  w.single("mailroom_in_flight_peak", "gauge", "Most messages in the engine at once so far",
           m.in_flight_peak);
  w.single("mailroom_waiting", "gauge", "Messages dispatched and waiting for a lane",
           m.waiting);
  w.single("mailroom_running", "gauge", "Messages taken by a lane or in an asynchronous call",
           m.running);
  w.single("mailroom_credits", "gauge",
           "Deliveries the engine may still take in (max_in_flight minus in flight)",
           in.max_in_flight - m.in_flight);
  w.single("mailroom_polls_failing", "gauge",
           "Transport polls failed in a row up to now (0 while polls succeed)",
           m.polls_failing);
  w.single("mailroom_ready", "gauge", "1 while /readyz answers 200", in.ready ? 1 : 0);
  w.single("mailroom_draining", "gauge", "1 once the drain began", in.draining ? 1 : 0);
  w.histogram("mailroom_message_latency_seconds",
              "Receive-to-settle time of each acked, retried or handed-back message "
              "(dead-letters and revoked deliveries are not timed)",
              m.latency);
  w.histogram("mailroom_handler_duration_seconds",
              "Handler call time: each blocking call, a batch call's mean per message",
              m.handler_durations);
}

void write_transport_gauges(std::string& out, const std::string& base,
                            const std::vector<transport_gauge>& gauges) {
  // Samples of one name together, under one HELP and TYPE.
  std::map<std::string, std::vector<const transport_gauge*>> by_name;
  for (const auto& g : gauges) {
    by_name[g.name].push_back(&g);
  }
  for (const auto& [name, samples] : by_name) {
    family_writer w{out, base};
    w.header("mailroom_" + name, "gauge", samples.front()->help);
    for (const auto* g : samples) {
      std::string extra;
      for (const auto& [label, value] : g->labels) {
        extra += (extra.empty() ? "" : ",") + label + "=\"" + escaped_label_value(value) + "\"";
      }
      w.sample("mailroom_" + name, g->value, extra);
    }
  }
}

void write_process(std::string& out) {
  auto line = [&out](const char* name, const char* type, const char* help, double v) {
    out += std::string{"# HELP "} + name + " " + help + "\n# TYPE " + name + " " + type +
           "\n" + name + " " + number(v) + "\n";
  };
  line("process_resident_memory_bytes", "gauge", "Resident memory size in bytes",
       static_cast<double>(current_rss_bytes()));
  line("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds",
       cpu_seconds());
  line("process_open_fds", "gauge", "Number of open file descriptors",
       static_cast<double>(open_fds()));
}

} // namespace

std::string prometheus_text(const exposition_input& in) {
  std::string out;
  out.reserve(16 * 1024);
  auto base = "transport=\"" + escaped_label_value(in.transport) + "\"";
  family_writer w{out, base};
  write_engine(w, in);
  write_transport_gauges(out, base, in.transport_gauges);
  write_process(out);
  return out;
}

} // namespace mailroom
