#!/usr/bin/env bash
# The deployment files parse and say what the code does: the systemd unit
# verifies (systemd-analyze, where there is one) and stops slower than the
# drain; the Kubernetes manifest is YAML whose ConfigMap is a configuration
# `mailroom validate` accepts, with a grace period above its drain deadline;
# the Dockerfile's stages and copies are well-formed; every metric the Grafana
# dashboard asks for is one mailroom exports. Usage: check_deploy.sh MAILROOM_BINARY SOURCE_DIR
set -euo pipefail
mailroom=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
source=$(cd "$2" && pwd)
deploy=$source/deploy
scratch=$(mktemp -d /tmp/mailroom-deploy-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "check_deploy: $*" >&2; exit 1; }

# --- systemd ---------------------------------------------------------------------
unit=$deploy/systemd/mailroom.service
grep -q '^ExecStart=/usr/local/bin/mailroom run ' "$unit" || fail "unit: ExecStart"
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
[ -n "$stop" ] && [ "$stop" -gt 10 ] || fail "unit: TimeoutStopSec must exceed the default 10 s drain"
if command -v systemd-analyze > /dev/null; then
  sed "s|/usr/local/bin/mailroom|$mailroom|" "$unit" > "$scratch/mailroom.service"
  out=$(systemd-analyze verify "$scratch/mailroom.service" 2>&1) || fail "systemd-analyze: $out"
  # Offline verification still names unknown keys and bad values on stderr.
  if echo "$out" | grep -E "Unknown (key|section)|Failed to parse|Invalid" ; then
    fail "systemd-analyze: $out"
  fi
fi

# --- Kubernetes ------------------------------------------------------------------
python3 - "$deploy/kubernetes/mailroom-kafka.yaml" "$scratch" <<'PY'
import sys, yaml, re
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {d["kind"]: d for d in docs}
for k in ("ConfigMap", "Secret", "Deployment"):
    assert k in kinds, "no " + k
toml = kinds["ConfigMap"]["data"]["mailroom.toml"]
open(sys.argv[2] + "/mailroom.toml", "w").write(toml)
drain_ms = int(re.search(r"^drain_timeout_ms = (\d+)$", toml, re.M).group(1))
pod = kinds["Deployment"]["spec"]["template"]["spec"]
c = pod["containers"][0]
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
pause = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
assert pod["terminationGracePeriodSeconds"] > pause + drain_ms / 1000, "grace period below the drain"
ann = kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]
assert ann["prometheus.io/port"] == str(c["ports"][0]["containerPort"])
assert kinds["Deployment"]["spec"]["replicas"] >= 2
PY
# The ConfigMap's configuration, as mailroom reads it (the handler program is
# the user's; /bin/cat stands in for it).
REDIS_PASSWORD=x KAFKA_PASSWORD=x "$mailroom" validate --config "$scratch/mailroom.toml" \
  --set 'handler.command=["/bin/cat"]' > "$scratch/validate.out" 2>&1 ||
  fail "the ConfigMap's mailroom.toml does not validate: $(cat "$scratch/validate.out")"

# --- Dockerfile ------------------------------------------------------------------
dockerfile=$deploy/Dockerfile
[ "$(grep -c '^FROM debian:12' "$dockerfile")" -eq 2 ] || fail "Dockerfile: two Debian 12 stages"
grep -q '^FROM debian:12 AS build$' "$dockerfile" || fail "Dockerfile: the build stage"
grep -q '^COPY --from=build /usr/local/bin/mailroom ' "$dockerfile" || fail "Dockerfile: binary"
# Every package the stages install exists in Debian 12's lists here (when
# this machine has the lists: an image that dropped them cannot tell).
if command -v apt-cache > /dev/null && apt-cache show libc6 > /dev/null 2>&1; then
  for p in $(sed -n '/apt-get install/,/rm -rf/p' "$dockerfile" | tr ' \\' '\n\n' |
             grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|rm|rf|y|qq|update|and)$'); do
    apt-cache show "$p" > /dev/null 2>&1 || fail "Dockerfile: no Debian package $p"
  done
fi
# The image check (run by hand where a container engine is: it compiles for
# minutes) at least parses.
bash -n "$deploy/check_image.sh" || fail "check_image.sh does not parse"

# --- Grafana ---------------------------------------------------------------------
# The names a scrape carries: from a short run on the memory transport.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$mailroom" run --set "http.listen=\"127.0.0.1:$port\"" --set source.messages=100000000 \
  --set progress.enabled=false > /dev/null 2>&1 &
pid=$!
scrape=""
for _ in $(seq 1 100); do
  scrape=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics').read().decode())" 2>/dev/null) && break
  sleep 0.1
done
kill -TERM $pid; kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
[ -n "$scrape" ] || fail "no scrape from the run"
echo "$scrape" | sed -n 's/^# TYPE \([a-z_:]*\) .*/\1/p' > "$scratch/exported"
# Kafka's own gauges appear only on Kafka: named in transports/kafka.
grep -ho '"kafka_[a-z_]*"' "$source/transports/kafka/kafka_transport.cpp" | tr -d '"' |
  sed 's/^/mailroom_/' >> "$scratch/exported"
python3 - "$deploy/grafana/mailroom-dashboard.json" "$scratch/exported" <<'PY'
import sys, json, re
dash = json.load(open(sys.argv[1]))
exported = set(open(sys.argv[2]).read().split())
asked = set()
for p in dash["panels"]:
    for t in p["targets"]:
        for name in re.findall(r"\b((?:mailroom|process)_[a-z_]+)", t["expr"]):
            asked.add(re.sub(r"_(bucket|sum|count)$", "", name))
missing = sorted(asked - exported)
assert not missing, "dashboard asks for metrics mailroom does not export: %s" % missing
assert len(asked) >= 8
PY
echo "deployment files OK"
