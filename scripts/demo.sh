#!/usr/bin/env bash
# The main job: `rewind demo`, the savepoint walkthrough with real jobs on local disk.
# Builds rewind and the post-analytics applications, then runs the demo into a fresh
# folder (or the new folder you pass). Jobs register under $REWIND_HOME (default ~/.rewind).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p rewind-cli -p rewind-post-analytics --bins
exec target/debug/rewind demo "$@"
