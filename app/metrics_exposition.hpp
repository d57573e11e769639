#pragma once

// The engine's counters, gauges and histograms in the Prometheus text
// exposition format (version 0.0.4), written here: Debian 12 packages no
// Prometheus client library for C++, and the format is a few lines of text
// per metric.

#include <cstdint>
#include <string>
#include <vector>

#include "core/metrics.hpp"
#include "core/transport.hpp"

namespace mailroom {

/// What one scrape shows.
struct exposition_input {
  metrics_snapshot metrics;       ///< The engine's counters, gauges and histograms.
  std::string transport;          ///< The transport's name: every series' `transport` label.
  std::int64_t max_in_flight = 0; ///< The engine's credit budget.
  std::vector<transport_gauge> transport_gauges; ///< The transport's own gauges.
  bool ready = false;             ///< What /readyz answers now.
  bool draining = false;          ///< True once the drain began.
};

/// Returns the text of one scrape: `mailroom_*` series (counters end in
/// `_total`, durations are seconds) and the standard `process_*` ones.
std::string prometheus_text(const exposition_input& in);

/// Returns `value` escaped for a label value (backslash, quote, newline).
std::string escaped_label_value(const std::string& value);

} // namespace mailroom
