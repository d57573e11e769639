#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and benchmarking mailroom
# needs. Idempotent: packages already present are not reinstalled, and apt is not
# touched at all when everything is there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libcaf-dev librdkafka-dev libhiredis-dev libspdlog-dev libfmt-dev
  libboost-test-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libssl-dev
  redis-server redis-tools gnuplot-nox procps
  maven openjdk-17-jre-headless kcat python3-boto3 python3-botocore
  libcurl4-openssl-dev libjemalloc-dev libcpp-httplib-dev prometheus python3-yaml
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing packages and not root, and sudo is not installed;" \
      "run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
