#!/usr/bin/env bash
# Runs the benchmarks in release mode and prints a table: each figure, its baseline from the
# same run, and the ratio. Pass --quick for the small sizes only, --only SECTION for one of
# write, inspect, validate, s3, diff, engine, windows, rescale, or checkpoints / chain (the
# engine section's 10M-key checkpoint figures, plus the same over runs three times as long
# (steady state), and delta-chain restore figures alone, for profiling).
# Starts the same local S3 server as the tests for the object-storage figures (set
# REWIND_BENCH_NO_S3=1 to skip them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p rewind-bench
tmp="$(mktemp -d)"
trap 'bash scripts/s3-server.sh stop "$tmp/s3"; rm -rf "$tmp"' EXIT
if [ -z "${REWIND_BENCH_NO_S3:-}" ]; then
  eval "$(bash scripts/s3-server.sh start "$tmp/s3")"
fi
target/release/rewind-bench "$@"
