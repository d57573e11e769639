#!/usr/bin/env bash
# Runs the main job on the embedded default: the in-memory transport fed by the
# generator (1M messages with duplicates and poison), no servers needed.
# Installs what is missing, builds, then runs `mailroom run`. Extra arguments
# are passed on (e.g. --set source.messages=100000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -x build/mailroom ]; then
  echo "run-demo: building mailroom (the first build takes a few minutes on 2 cores)" >&2
fi
# Ninja's progress lines go to stderr, so the demo's own output stays clean.
bash scripts/build.sh >&2
exec ./build/mailroom run --config config/default.toml "$@"
