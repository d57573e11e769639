#!/usr/bin/env bash
# Passes the tests from a fresh clone on a fresh Debian 12 machine: installs the
# packages, builds, runs every test with CTest, then builds with ASan+UBSan and
# runs them again under the sanitizers — all but the Kafka and SQS CLI suites,
# whose child processes run the same transport code the transport tests run
# under ASan, at several times their minutes, and the server smoke tests,
# which check the servers, not our code (the whole run stays under 30
# minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/fetch-servers.sh

# Each phase's line carries the minutes since the start: CI keeps the whole
# run under 30, and the log shows where the time went.
phase() { printf '== %s (at %dm%02ds)\n' "$1" $((SECONDS / 60)) $((SECONDS % 60)); }

phase "build (RelWithDebInfo)"
bash scripts/build.sh
phase "tests"
# Two at a time (CTest's RESOURCE_LOCK keeps the JVM servers one at a time):
# most suites wait on servers and child processes, not on the CPU.
ctest --test-dir build --output-on-failure --timeout 300 -j2

if [ "${MAILROOM_SKIP_SANITIZERS:-0}" != "1" ]; then
  phase "build (ASan + UBSan)"
  # -O1 with line tables and assertions on: the sanitizers' usual setting,
  # and half the compile time of -O2 -g under ASan + UBSan on CAF's headers.
  MAILROOM_BUILD_DIR=build-asan bash scripts/build.sh -DMAILROOM_SANITIZE=ON -DMAILROOM_BENCH=OFF \
    -DMAILROOM_BROKER_CLI_TESTS=OFF \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1"
  phase "tests under ASan + UBSan"
  # Left out: the Kafka and SQS CLI suites (not even built) and the server
  # smoke tests (their children run code the transport tests already run
  # here), and the packaging checks (they test files, not memory). One at a
  # time: two ASan suites at once slowed a Redis outage test's own admin
  # calls past their 1 s bound.
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure --timeout 600 -E "smoke_test|install_package|deploy_files"
fi
phase "done"
