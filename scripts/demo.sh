#!/usr/bin/env bash
# The main job on an embedded default: generate a savepoint, inspect it, validate it.
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh folder each run: rewind never overwrites a savepoint.
dest="${1:-$(mktemp -d)/rewind-demo}"
cargo build --quiet -p rewind-cli
target/debug/rewind generate "$dest" --keys 100000 --parallelism 4
target/debug/rewind inspect "$dest"
target/debug/rewind validate "$dest"
target/debug/rewind state "$dest" op-0 state --limit 5
