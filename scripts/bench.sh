#!/usr/bin/env bash
# Runs the benchmarks in release mode and prints a table: each figure, its baseline from the
# same run, and the ratio. Pass --quick for the small sizes only.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p rewind-bench
exec target/release/rewind-bench "$@"
