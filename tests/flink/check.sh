#!/usr/bin/env bash
# Restores savepoints in a real Apache Flink 2.3 (a local MiniCluster in one java process,
# REST on a loopback port) and checks their state from inside Flink. Installs Flink's jars
# with scripts/flink-env.sh when missing and compiles the jobs in tests/flink with javac.
#
#   bash tests/flink/check.sh WORKDIR
#
# Today: the real counter samples in fixtures/flink (every one of 100,000 keys holds 10)
# restore at another parallelism, and what Flink reads back from the rich-state sample equals
# what `rewind import-flink` reads without a JVM. Savepoints Rewind writes will be checked
# the same way. REWIND_BIN names the rewind binary (default: built with cargo).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:?usage: check.sh WORKDIR}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"

lib="$(bash scripts/flink-env.sh | tail -n 1)"
classes="$work/classes"
mkdir -p "$classes"
javac -nowarn -d "$classes" -cp "$lib/*" tests/flink/*.java tests/flink/flinksamples/*.java
if [ -z "${REWIND_BIN:-}" ]; then
  cargo build --quiet -p rewind-cli
  REWIND_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/rewind"
fi
java_run() {
  timeout 300 java -Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j.configurationFile="$PWD/tests/flink/log4j2.properties" -cp "$lib/*:$classes" "$@"
}

# restore_counter NAME SAVEPOINT_DIR KEYS EXPECTED PARALLELISM MAX_PARALLELISM
restore_counter() {
  local name="$1" sp="$2" n="$3" expect="$4" p="$5" maxp="$6"
  local run="$work/$name"
  mkdir -p "$run"
  # Tests never open a fixture in place.
  cp -r "$sp" "$run/savepoint"
  local started=$SECONDS
  if java_run -Dlog.file="$run/flink.log" CounterRestoreCheck \
      --restore-path "file://$run/savepoint" --n "$n" --expect "$expect" \
      --parallelism "$p" --max-parallelism "$maxp" \
      --checkpoint-dir "file://$run/checkpoints" --mismatch-file "$run/mismatches.txt" \
      >"$run/stdout" 2>"$run/stderr"; then
    echo "ok   flink: $name at parallelism $p: $(tail -n 1 "$run/stdout") ($((SECONDS - started)) s)"
  else
    echo "FAIL flink: $name at parallelism $p: $(tail -n 1 "$run/stdout" 2>/dev/null)"
    head -n 5 "$run/mismatches.txt" 2>/dev/null || true
    tail -n 20 "$run/stderr"
    return 1
  fi
}

# rich_state: Flink restores the rich-state sample (String keys: value, map, list and POJO
# state; Integer keys: open event-time windows with timers) at parallelism 3 and dumps every
# key and fires every window; the dump must equal rewind import-flink's rows.
rich_state() {
  local run="$work/rich-state" started=$SECONDS
  mkdir -p "$run/dump"
  cp -r fixtures/flink/rich-state-A/savepoint-46a48f-b5c105e0343a "$run/savepoint"
  if ! java_run -Dlog.file="$run/flink.log" flinksamples.RichStateJob --mode probe \
      --n 10345 --keys 1000 --parallelism 3 --max-parallelism 128 --rest-port 0 \
      --dump-dir "$run/dump" --restore-path "file://$run/savepoint" \
      --checkpoint-dir "file://$run/checkpoints" >"$run/stdout" 2>"$run/stderr"; then
    echo "FAIL flink: rich-state probe restore"
    tail -n 20 "$run/stderr"
    return 1
  fi
  "$REWIND_BIN" import-flink "$run/savepoint" "$run/imported" >/dev/null
  python3 tests/flink/compare_rich_state.py "$run/dump" "$REWIND_BIN" "$run/imported" &&
    echo "ok   flink: rich-state restored by Flink at parallelism 3 and compared ($((SECONDS - started)) s)"
}

failed=0
restore_counter hashmap-canonical \
  fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761 100000 11 3 128 || failed=1
restore_counter rocksdb-canonical \
  fixtures/flink/java-rocksdb-canonical-n100000/savepoint-ac0c02-efa32d629dbf 100000 11 3 128 || failed=1
rich_state || failed=1
exit "$failed"
