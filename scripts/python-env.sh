#!/usr/bin/env bash
# Makes a Python environment of the tests: creates the venv $REPO/VENV if it is missing and
# installs REQUIREMENTS into it when they changed since the last install (a sha256 stamp
# inside the venv tells). Without arguments, the interop check's (tests/interop): .venv
# with tests/interop/requirements.txt. Needs only python3 (with its venv module) and
# access to PyPI.
#
# Prints the venv's python as the last line on stdout; everything else goes to stderr:
#   py="$(bash scripts/python-env.sh)"
#   "$py" tests/interop/check_savepoints.py fixtures/v1
#   py="$(bash scripts/python-env.sh .venv-python crates/python/tests/requirements.txt)"
# Set PYTHON to use another interpreter than python3 to create the venv.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/${1:-.venv}"
REQUIREMENTS="$REPO/${2:-tests/interop/requirements.txt}"
STAMP="$VENV/.requirements.sha256"
PYTHON="${PYTHON:-python3}"

log() { printf 'python-env: %s\n' "$*" >&2; }

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  log "$PYTHON not found; install Python 3 first"
  exit 1
fi
if [ ! -f "$REQUIREMENTS" ]; then
  log "missing $REQUIREMENTS"
  exit 1
fi

# A venv whose interpreter no longer runs (its Python was upgraded or removed) is rebuilt.
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  log "$VENV is broken or incomplete; recreating it"
  rm -rf "$VENV"
fi

if [ ! -e "$VENV" ]; then
  log "creating $VENV with $("$PYTHON" --version 2>&1)"
  if ! "$PYTHON" -m venv "$VENV" >&2; then
    rm -rf "$VENV"
    log "could not create the venv; on Debian or Ubuntu: apt-get install python3-venv"
    exit 1
  fi
fi

sha256() {
  "$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

want="$(sha256 "$REQUIREMENTS")"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  log "installing $(basename "$REQUIREMENTS") into $VENV"
  rm -f "$STAMP"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
    -r "$REQUIREMENTS" >&2
  printf '%s\n' "$want" >"$STAMP.tmp"
  mv "$STAMP.tmp" "$STAMP"
else
  log "$VENV is up to date"
fi

printf '%s\n' "$VENV/bin/python"
