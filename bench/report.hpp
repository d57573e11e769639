#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

namespace mailroom::bench {

/// Adds `"targets"` to `results`: ≥ 1M msgs/s end-to-end, engine ≥ 0.5× the
/// long-lived ceiling at the same max_in_flight, RSS growth < 10 % from 10 %
/// to 90 % of the flat run. Each has the figure, where it was reached and
/// `pass`.
void evaluate_targets(nlohmann::json& results);

/// Prints the table of `results` (see main.cpp for its shape) to `out`.
void print_table(const nlohmann::json& results, std::ostream& out);

/// Writes `dir`/results.json and `dir`/throughput.dat (creating `dir`), then
/// unless `draw` is false draws `dir`/throughput.png with gnuplot and
/// bench/throughput.gp. Returns the chart's path, or an empty string (and a
/// note on stderr when gnuplot is missing or failed).
std::string write_outputs(nlohmann::json& results, const std::string& dir, bool draw);

} // namespace mailroom::bench
