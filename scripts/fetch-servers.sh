#!/usr/bin/env bash
# Fetches the jars of the servers that the Kafka and SQS tests start (a Kafka
# broker, ElasticMQ) from Maven, once per machine, into
#   ${MAILROOM_CACHE_DIR:-$HOME/.cache/mailroom}/kafka-<ver>/lib
#   ${MAILROOM_CACHE_DIR:-$HOME/.cache/mailroom}/elasticmq-<ver>/lib
# Idempotent: a directory whose `.complete` marker exists is not fetched again,
# and nothing is printed then. Needs mvn and java (scripts/install-deps.sh).
# tests/support/kafka_broker.hpp and elasticmq_server.hpp read the same paths
# (or MAILROOM_KAFKA_LIB / MAILROOM_ELASTICMQ_LIB).
set -euo pipefail

KAFKA_VERSION=4.1.1
ELASTICMQ_VERSION=1.6.11
LOG4J_VERSION=2.24.3 # the log4j-core that Kafka $KAFKA_VERSION depends on
cache="${MAILROOM_CACHE_DIR:-$HOME/.cache/mailroom}"
work=""
trap '[ -z "$work" ] || rm -rf "$work"' EXIT

# dep GROUP:ARTIFACT:VERSION[:alone]: one <dependency> of a pom; `alone` leaves
# out its own dependencies (those it needs come with the others).
dep() {
  local g a v alone
  IFS=: read -r g a v alone <<<"$1"
  printf '    <dependency>\n      <groupId>%s</groupId>\n      <artifactId>%s</artifactId>\n      <version>%s</version>\n' "$g" "$a" "$v"
  if [ "$alone" = alone ]; then
    printf '      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>\n'
  fi
  printf '    </dependency>\n'
}

# fetch NAME VERSION COORDINATE...: the artifacts and their runtime dependencies
# into $cache/NAME-VERSION/lib. The marker lists the coordinates, so a change
# of this list fetches again.
fetch() {
  local name=$1 version=$2
  shift 2
  local dest="$cache/$name-$version"
  local want="$*"
  if [ -d "$dest/lib" ] && [ -f "$dest/.complete" ] &&
    [ "$(head -n 1 "$dest/.complete")" = "$want" ]; then
    return 0
  fi
  if ! command -v mvn >/dev/null 2>&1; then
    echo "fetch-servers: mvn is not installed; run scripts/install-deps.sh" >&2
    exit 1
  fi
  echo "fetch-servers: fetching $name $version ($want) into $dest/lib ..." >&2
  mkdir -p "$cache"
  # The temp dir is in the cache so that the final mv is a rename.
  work=$(mktemp -d "$cache/.fetch-$name.XXXXXX")
  {
    printf '<?xml version="1.0" encoding="UTF-8"?>\n'
    printf '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
    printf '  <modelVersion>4.0.0</modelVersion>\n'
    printf '  <groupId>mailroom.tests</groupId>\n  <artifactId>fetch-%s</artifactId>\n' "$name"
    printf '  <version>1</version>\n  <packaging>pom</packaging>\n  <dependencies>\n'
    local c
    for c in "$@"; do dep "$c"; done
    printf '  </dependencies>\n</project>\n'
  } >"$work/pom.xml"
  if ! (cd "$work" && mvn -B -q dependency:copy-dependencies \
      -DoutputDirectory=lib -DincludeScope=runtime >"$work/mvn.log" 2>&1); then
    echo "fetch-servers: mvn failed to fetch $name $version; its output:" >&2
    cat "$work/mvn.log" >&2
    exit 1
  fi
  local jars
  jars=$(find "$work/lib" -maxdepth 1 -name '*.jar' 2>/dev/null | wc -l)
  if [ "$jars" -eq 0 ]; then
    echo "fetch-servers: mvn fetched no jar for $name $version; its output:" >&2
    cat "$work/mvn.log" >&2
    exit 1
  fi
  # Into place by renames on one file system, then the marker.
  mkdir -p "$dest"
  rm -f "$dest/.complete"
  rm -rf "$dest/lib.old"
  if [ -d "$dest/lib" ]; then
    mv "$dest/lib" "$dest/lib.old"
  fi
  mv "$work/lib" "$dest/lib"
  rm -rf "$dest/lib.old" "$work"
  work=""
  printf '%s\n%s jars\n' "$want" "$jars" >"$dest/.complete"
  echo "fetch-servers: $name $version ready ($jars jars)" >&2
}

# The broker, the CLI tools (TopicCommand is in kafka-tools; its own
# dependencies, Kafka Connect and Jetty, are not needed) and the slf4j binding
# that sends the broker's logging to log4j2.
fetch kafka "$KAFKA_VERSION" \
  "org.apache.kafka:kafka_2.13:$KAFKA_VERSION" \
  "org.apache.kafka:kafka-tools:$KAFKA_VERSION:alone" \
  "org.apache.logging.log4j:log4j-slf4j-impl:$LOG4J_VERSION:alone"
fetch elasticmq "$ELASTICMQ_VERSION" \
  "org.elasticmq:elasticmq-server_2.13:$ELASTICMQ_VERSION"
