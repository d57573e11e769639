#pragma once

// The durable-steps benchmark (issue 12): messages with 1, 3 and 10 steps
// whose checkpoints live on a real redis-server, batch mode (one write per
// message) beside per-step mode (one write per step), and a raw baseline in
// the same run: the same engine and handler doing the same work as plain
// function calls, nothing checkpointed. See bench/README.md, "Durable steps".

namespace mailroom::bench {

class options;

/// `mailroom_bench steps [--messages N] [--steps 1,3,10] [--repeat R]`:
/// prints msgs/s and steps/s, the ratio to the baseline, engine p50/p99,
/// process CPU per message, redis-server CPU per message and peak RSS, best
/// and median of R interleaved runs. Returns the exit code.
int run_steps_all(options& o);

} // namespace mailroom::bench
