#!/usr/bin/env bash
# Fuzzes what Rewind reads from untrusted savepoints, each target for SECONDS (default 60):
#   manifest        _manifest.json parsing and its whole-state checks
#   shard           a Parquet shard (with its true size and checksum) through
#                   `validate --deep` and a full read of the state
#   flink_metadata  a Flink _metadata file opened as a savepoint
# libFuzzer through cargo-fuzz (installed from crates.io when missing) on the stable
# toolchain: RUSTC_BOOTSTRAP lets cargo-fuzz pass its flags; no sanitizer, since the code
# under test forbids unsafe. Seeds come from the golden fixtures, the corrupt corpus and
# the Flink samples. A panic, or memory past the caps (an allocation sized by an untrusted
# number), fails the run and leaves the input in fuzz/artifacts/TARGET/: add it to
# fixtures/corrupt/ with its expected error once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

seed() { # TARGET FIND-ARGS...: copy matching fixture files into the target's corpus
  local corpus="fuzz/corpus/$1"
  shift
  mkdir -p "$corpus"
  find fixtures "$@" -type f -size -256k | while read -r f; do
    cp "$f" "$corpus/seed-$(printf '%s' "$f" | cksum | cut -d' ' -f1)"
  done
}
seed manifest -name _manifest.json
seed shard -path 'fixtures/v1/*' -name '*.parquet'
seed flink_metadata -name _metadata

for target in manifest shard flink_metadata; do
  echo "fuzz: $target for ${seconds}s"
  (cd fuzz && cargo fuzz run -s none "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1)
done
