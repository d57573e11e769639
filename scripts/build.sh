#!/usr/bin/env bash
# Configures and builds mailroom into build/ (or $MAILROOM_BUILD_DIR) with Ninja,
# ccache and two jobs. Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${MAILROOM_BUILD_DIR:-build}
if [ ! -f "$build_dir/build.ninja" ] || [ $# -gt 0 ]; then
  # Line tables only (-g1): backtraces and perf keep file:line, and CAF's
  # templates compile a quarter faster than with full debug info. The same
  # -O2 code as RelWithDebInfo's default, so benchmarks are unaffected.
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "$@" >/dev/null
fi
ninja -C "$build_dir" -j "${MAILROOM_JOBS:-2}"
