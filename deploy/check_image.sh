#!/usr/bin/env bash
# Builds deploy/Dockerfile and checks the image: `mailroom --version`, a short
# in-memory run, the unprivileged user, /healthz, /readyz and /metrics, and a
# SIGTERM drain ending with exit 0. Not part of the test command: it compiles
# the project again from scratch inside the build stage (~6 min on 2 cores) and
# needs a container engine, which CI machines here do not have.
#
#   deploy/check_image.sh                  # docker if its engine answers, else podman
#   MAILROOM_BASE=debootstrap deploy/check_image.sh
#       # no registry: makes debian:12 and debian:12-slim locally with debootstrap
#       # (a minbase Debian 12; both tags name it) and builds with --pull=never
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tag=${MAILROOM_IMAGE:-mailroom:check}
port=${MAILROOM_IMAGE_PORT:-19466}

if docker info >/dev/null 2>&1; then
  engine=docker
elif command -v podman >/dev/null; then
  engine=podman
else
  echo "check_image: neither a Docker engine nor podman here" >&2
  exit 77
fi
echo "== engine: $engine"

work=""
name=""
cleanup() {
  [[ -n $name ]] && $engine rm -f "$name" >/dev/null 2>&1
  [[ -n $work ]] && rm -rf "$work"
  return 0
}
trap cleanup EXIT

pull=()
if [[ ${MAILROOM_BASE:-} == debootstrap ]]; then
  if ! $engine image inspect debian:12 >/dev/null 2>&1; then
    work=$(mktemp -d)
    echo "== debootstrap bookworm (minbase) as debian:12 and debian:12-slim"
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian \
      >"$work/debootstrap.log"
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb
    tar -C "$work/rootfs" -c . | $engine import - debian:12 >/dev/null
    $engine tag debian:12 debian:12-slim
  fi
  pull=(--pull=never)
fi

echo "== build"
start=$SECONDS
$engine build --network host "${pull[@]}" -f "$root/deploy/Dockerfile" -t "$tag" "$root"
echo "== built in $((SECONDS - start)) s"

fail() {
  echo "check_image: $*" >&2
  exit 1
}

echo "== run"
version=$($engine run --rm "$tag" --version)
[[ $version == mailroom\ * ]] || fail "--version says: $version"
summary=$($engine run --rm "$tag" run --set source.messages=20000)
grep -q 'drain .*complete' <<<"$summary" || fail "the in-memory run did not complete"
name=mailroom-check-$$
$engine run -d --name "$name" --network host "$tag" run --set source.messages=100000000 \
  --set "http.listen=127.0.0.1:$port" >/dev/null
for _ in $(seq 50); do
  curl -fsS "127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
[[ $($engine exec "$name" id -u) == 10001 ]] || fail "not running as uid 10001"
curl -fsS "127.0.0.1:$port/healthz" >/dev/null || fail "/healthz"
# Read whole, then searched: `grep -q` closing the pipe early fails curl.
ready=$(curl -fsS "127.0.0.1:$port/readyz") || fail "/readyz"
[[ $ready == *'"ready":true'* ]] || fail "/readyz: $ready"
# The per-topic series appear with the first messages: asked until then.
for _ in $(seq 50); do
  metrics=$(curl -fsS "127.0.0.1:$port/metrics") || fail "/metrics"
  grep -q '^mailroom_acked_total{' <<<"$metrics" && break
  sleep 0.2
done
grep -q '^mailroom_acked_total{.*topic="orders"' <<<"$metrics" ||
  fail "/metrics has no mailroom_acked_total for topic orders"
$engine stop -t 30 "$name" >/dev/null
[[ $($engine inspect "$name" --format '{{.State.ExitCode}}') == 0 ]] || fail "exit after SIGTERM"
logs=$($engine logs "$name" 2>&1)
grep -q 'drain .*complete' <<<"$logs" || fail "no complete drain in the log"
echo "image $tag OK"
