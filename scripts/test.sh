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

echo "== build (RelWithDebInfo)"
bash scripts/build.sh
echo "== tests"
ctest --test-dir build --output-on-failure --timeout 300

if [ "${MAILROOM_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== build (ASan + UBSan)"
  MAILROOM_BUILD_DIR=build-asan bash scripts/build.sh -DMAILROOM_SANITIZE=ON -DMAILROOM_BENCH=OFF
  echo "== tests under ASan + UBSan"
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure --timeout 600 -E "cli_kafka|cli_sqs|smoke_test"
fi
