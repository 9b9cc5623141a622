#!/usr/bin/env bash
# Restores savepoints in a real Apache Flink 2.3 (a local MiniCluster in one java process,
# REST on a loopback port) and checks their state from inside Flink. Installs Flink's jars
# with scripts/flink-env.sh when missing and compiles the jobs in tests/flink with javac.
#
#   bash tests/flink/check.sh WORKDIR
#
# Today: the real counter samples in fixtures/flink (every one of 100,000 keys holds 10)
# restore at another parallelism. Savepoints Rewind writes will be checked the same way.
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:?usage: check.sh WORKDIR}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"

lib="$(bash scripts/flink-env.sh | tail -n 1)"
classes="$work/classes"
mkdir -p "$classes"
javac -nowarn -d "$classes" -cp "$lib/*" tests/flink/*.java

# restore_counter NAME SAVEPOINT_DIR KEYS EXPECTED PARALLELISM MAX_PARALLELISM
restore_counter() {
  local name="$1" sp="$2" n="$3" expect="$4" p="$5" maxp="$6"
  local run="$work/$name"
  mkdir -p "$run"
  # Tests never open a fixture in place.
  cp -r "$sp" "$run/savepoint"
  local started=$SECONDS
  if timeout 300 java -Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -Dlog4j.configurationFile="$PWD/tests/flink/log4j2.properties" \
      -Dlog.file="$run/flink.log" \
      -cp "$lib/*:$classes" CounterRestoreCheck \
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

failed=0
restore_counter hashmap-canonical \
  fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761 100000 11 3 128 || failed=1
restore_counter rocksdb-canonical \
  fixtures/flink/java-rocksdb-canonical-n100000/savepoint-ac0c02-efa32d629dbf 100000 11 3 128 || failed=1
exit "$failed"
