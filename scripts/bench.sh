#!/usr/bin/env bash
# Runs the benchmark harness: installs what is missing, builds, then runs
# mailroom_bench, which prints the table, writes bench/out/results.json and
# draws bench/out/throughput.png. See bench/README.md.
#
#   scripts/bench.sh                      # full run (2M messages per configuration, 10M flat-RSS run)
#   scripts/bench.sh --quick              # a fast look: 200k messages, 1M flat-RSS run
#   scripts/bench.sh --messages 500000    # any mailroom_bench option is passed through (later wins)
#   scripts/bench.sh --redis              # the Redis benchmark (own redis-server; bench/out/redis.json)
#   scripts/bench.sh --redis --claims 1M  # its options are passed through too
#   scripts/bench.sh --handlers           # handlers that take time (blocking / async latency)
#   scripts/bench.sh --kafka              # Kafka: raw librdkafka vs the engine (own broker and redis-server)
#   scripts/bench.sh --kafka --records 200000 --repeat 1   # its options are passed through too
#   scripts/bench.sh --sqs                # SQS: raw receive + delete loop vs the engine (own ElasticMQ)
#   scripts/bench.sh --steps              # durable steps on Redis: batch vs per-step checkpoints (own redis-server)
#   scripts/bench.sh --help               # the options
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${MAILROOM_BUILD_DIR:-build}

quick=0
redis=0
handlers=0
kafka=0
sqs=0
steps=0
args=()
for a in "$@"; do
  if [ "$a" = "--quick" ]; then
    quick=1
  elif [ "$a" = "--redis" ] || [ "$a" = "redis" ]; then
    redis=1
  elif [ "$a" = "--handlers" ] || [ "$a" = "handlers" ]; then
    handlers=1
  elif [ "$a" = "--kafka" ] || [ "$a" = "kafka" ]; then
    kafka=1
  elif [ "$a" = "--sqs" ] || [ "$a" = "sqs" ]; then
    sqs=1
  elif [ "$a" = "--steps" ] || [ "$a" = "steps" ]; then
    steps=1
  else
    args+=("$a")
  fi
done

bash scripts/install-deps.sh
if ! bash scripts/build.sh; then
  # The harness needs only the engine and itself: a broken unrelated target
  # (a test being edited) should not stop a measurement.
  echo "bench: the full build failed; building mailroom_bench alone" >&2
  ninja -C "$build_dir" -j "${MAILROOM_JOBS:-2}" mailroom_bench
fi

if [ "$kafka" = 1 ]; then
  bash scripts/fetch-servers.sh # the Kafka broker, fetched once into ~/.cache/mailroom
  exec "$build_dir/bench/mailroom_bench" kafka "${args[@]}"
fi
if [ "$sqs" = 1 ]; then
  bash scripts/fetch-servers.sh # ElasticMQ, fetched once into ~/.cache/mailroom
  exec "$build_dir/bench/mailroom_bench" sqs "${args[@]}"
fi
if [ "$steps" = 1 ]; then
  exec "$build_dir/bench/mailroom_bench" steps "${args[@]}"
fi
if [ "$handlers" = 1 ]; then
  exec "$build_dir/bench/mailroom_bench" handlers "${args[@]}"
fi
if [ "$redis" = 1 ]; then
  exec "$build_dir/bench/mailroom_bench" redis "${args[@]}"
fi
defaults=()
if [ "$quick" = 1 ]; then
  defaults=(--messages 200000 --flat-messages 1000000)
fi
exec "$build_dir/bench/mailroom_bench" "${defaults[@]}" "${args[@]}"
