#!/usr/bin/env bash
# Runs the main job on the embedded default: the in-memory transport fed by the
# generator (1M messages with duplicates and poison), no servers needed.
# Installs what is missing, builds, then runs `mailroom run`. Extra arguments
# are passed on (e.g. --set source.messages=100000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
exec ./build/mailroom run --config config/default.toml "$@"
