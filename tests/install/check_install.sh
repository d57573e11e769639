#!/usr/bin/env bash
# `cmake --install` into a scratch prefix, then another CMake project
# (tests/install/consumer) builds the embed example with find_package(mailroom)
# and runs it; the installed command prints its version and finds its default
# configuration under share/. Usage: check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
scratch=$(mktemp -d /tmp/mailroom-install-XXXXXX)
trap 'rm -rf "$scratch"' EXIT

cmake --install "$build" --prefix "$scratch/prefix" > "$scratch/install.log"
for f in bin/mailroom include/mailroom/engine.hpp include/mailroom/memory.hpp \
         lib/cmake/mailroom/mailroomConfig.cmake share/mailroom/default.toml; do
  [ -e "$scratch/prefix/$f" ] || { echo "not installed: $f" >&2; exit 1; }
done
# Public headers only: no path into the source tree's folders in user code.
if grep -nE '#include "(stores|transports)/' "$source/examples/embed/main.cpp"; then
  echo "the embed example includes a private path" >&2
  exit 1
fi

launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$source/tests/install/consumer" -B "$scratch/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$scratch/prefix" -DEXAMPLE_SOURCE="$source/examples/embed/main.cpp" \
  "${launcher[@]}" > "$scratch/configure.log" || { cat "$scratch/configure.log" >&2; exit 1; }
cmake --build "$scratch/consumer" -j2 > "$scratch/build.log" || { cat "$scratch/build.log" >&2; exit 1; }
out=$("$scratch/consumer/embed")
echo "$out" | grep -q "handled" || { echo "the embed example said: $out" >&2; exit 1; }

version=$("$scratch/prefix/bin/mailroom" --version)
echo "$version" | grep -qE '^mailroom [0-9]+\.[0-9]+\.[0-9]+' || { echo "version: $version" >&2; exit 1; }
# Without --config the installed command reads share/mailroom/default.toml.
"$scratch/prefix/bin/mailroom" validate > /dev/null 2> "$scratch/validate.err" ||
  { cat "$scratch/validate.err" >&2; exit 1; }
echo "installed package OK: $version; the embed example built against it and ran"
