#!/usr/bin/env bash
# Makes the real Apache Flink the tests restore savepoints with: the jars of Flink 2.3.0
# (PyPI's apache-flink-libraries, which ships them in pyflink/lib; no Python of Flink is
# used) in the venv $REPO/.venv-flink, installed when missing. Needs python3 and a JDK 17
# (java and javac) on PATH.
#
# Prints the directory of the Flink jars as the last line on stdout; the rest goes to stderr:
#   lib="$(bash scripts/flink-env.sh | tail -n 1)"
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv-flink"
VERSION="2.3.0"
PYTHON="${PYTHON:-python3}"

log() { printf 'flink-env: %s\n' "$*" >&2; }

for tool in java javac "$PYTHON"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "$tool not found; the Flink tests need a JDK 17 (on Debian: apt-get install openjdk-17-jdk-headless) and python3"
    exit 1
  fi
done

lib_dir() {
  "$VENV/bin/python" - <<'PY'
import os, importlib.util
spec = importlib.util.find_spec("pyflink")
print(os.path.join(os.path.dirname(spec.origin) if spec.origin else list(spec.submodule_search_locations)[0], "lib"))
PY
}

installed() {
  local shown
  [ -x "$VENV/bin/python" ] || return 1
  shown="$("$VENV/bin/pip" show apache-flink-libraries 2>/dev/null)" || return 1
  grep -qx "Version: $VERSION" <<<"$shown"
}

if ! installed; then
  rm -rf "$VENV"
  log "installing apache-flink-libraries==$VERSION (Flink's jars, about 330 MB) into $VENV"
  "$PYTHON" -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --no-deps "apache-flink-libraries==$VERSION" >&2
fi
lib="$(lib_dir)"
if ! ls "$lib"/flink-dist-"$VERSION".jar >/dev/null 2>&1; then
  log "no flink-dist-$VERSION.jar in $lib"
  exit 1
fi
echo "$lib"
