#!/usr/bin/env bash
# Restores savepoints in a real Apache Flink 2.3 (a local MiniCluster in one java process,
# REST on a loopback port) and checks their state from inside Flink. Installs Flink's jars
# with scripts/flink-env.sh when missing and compiles the jobs in tests/flink with javac.
#
#   bash tests/flink/check.sh WORKDIR [ENGINE_SAVEPOINT]
#
# The real counter samples in fixtures/flink (every one of 100,000 keys holds 10) restore at
# another parallelism, and what Flink reads back from the rich-state sample equals what
# `rewind import-flink` reads without a JVM. Then what `rewind export-flink` writes: the
# counter sample unchanged, at max parallelism 4096 and 32, Snappy-compressed, after edits (operators removed,
# uid renamed, keys deleted, a value upserted); a bootstrapped savepoint after a type
# widening; a rewind-engine savepoint (ENGINE_SAVEPOINT, the keyed-count example's); the
# rich-state sample at parallelism 3; its profile state bootstrapped from JSON with a POJO;
# and POJO keys (fixtures/flink/pojo-key) in the key groups the import kept. REWIND_BIN names the rewind binary (default: built with cargo).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="${1:?usage: check.sh WORKDIR [ENGINE_SAVEPOINT]}"
engine_savepoint="${2:-}"
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

# restore_counter NAME SAVEPOINT_DIR KEYS EXPECTED PARALLELISM MAX_PARALLELISM [ARGS...]
# (ARGS: more CounterRestoreCheck options, e.g. --uid U --strict true --expect-file F)
restore_counter() {
  local name="$1" sp="$2" n="$3" expect="$4" p="$5" maxp="$6"
  shift 6
  local run="$work/$name"
  mkdir -p "$run"
  # Tests never open a fixture in place.
  cp -r "$sp" "$run/savepoint"
  local started=$SECONDS
  if java_run -Dlog.file="$run/flink.log" CounterRestoreCheck \
      --restore-path "file://$run/savepoint" --n "$n" --expect "$expect" \
      --parallelism "$p" --max-parallelism "$maxp" \
      --checkpoint-dir "file://$run/checkpoints" --mismatch-file "$run/mismatches.txt" "$@" \
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

# probe_rich NAME SAVEPOINT_DIR PARALLELISM: RichStateJob's probe restores the savepoint and
# dumps every key of `profile` and every window it fires into NAME/dump.
probe_rich() {
  local run="$work/$1"
  mkdir -p "$run/dump"
  cp -r "$2" "$run/savepoint"
  java_run -Dlog.file="$run/flink.log" flinksamples.RichStateJob --mode probe \
      --n 10345 --keys 1000 --parallelism "$3" --max-parallelism 128 --rest-port 0 \
      --dump-dir "$run/dump" --restore-path "file://$run/savepoint" \
      --checkpoint-dir "file://$run/checkpoints" >"$run/stdout" 2>"$run/stderr" || {
    echo "FAIL flink: $1: the probe did not restore"
    tail -n 20 "$run/stderr"
    return 1
  }
}

# counts_file SAVEPOINT UID STATE OUT: "KEY COUNT+1" for every key, what the counter job
# must see after one more event per key.
counts_file() {
  "$REWIND_BIN" state "$1" "$2" "$3" --format json --limit 100000000 |
    python3 -c 'import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(r["key"], r["value"] + 1)' >"$4"
}

# Savepoints rewind export-flink wrote, restored by Flink.
exports() {
  local w="$work/exports" counter=fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761
  local failed=0
  mkdir -p "$w"
  "$REWIND_BIN" import-flink "$counter" "$w/counter" >/dev/null
  "$REWIND_BIN" export-flink "$w/counter" "$w/same" >/dev/null
  restore_counter export-unchanged "$w/same" 100000 11 3 128 || failed=1
  "$REWIND_BIN" export-flink "$w/counter" "$w/max4096" --max-parallelism 4096 --parallelism 5 >/dev/null
  restore_counter export-max-parallelism-4096 "$w/max4096" 100000 11 5 4096 || failed=1
  "$REWIND_BIN" export-flink "$w/counter" "$w/max32" --max-parallelism 32 --parallelism 3 >/dev/null
  restore_counter export-max-parallelism-32 "$w/max32" 100000 11 3 32 || failed=1
  "$REWIND_BIN" export-flink "$w/counter" "$w/snappy" --compress >/dev/null
  restore_counter export-snappy "$w/snappy" 100000 11 3 128 || failed=1

  # Edits on the way: the sources removed (the job restores without ignoring unclaimed
  # state), the uid renamed, keys 0..99 deleted, key 100 set to 1000.
  python3 -c 'print("key"); [print(k) for k in range(100)]' >"$w/deleted.csv"
  printf 'key,value\n100,1000\n' >"$w/upsert.csv"
  "$REWIND_BIN" edit "$w/counter" "$w/edited" --remove-operator seq-source \
    --remove-operator idle-source --remove-operator idle-map --rename-operator counter=counter-v2 \
    --delete-keys counter-v2/count="$w/deleted.csv" --upsert counter-v2/count="$w/upsert.csv" >/dev/null
  "$REWIND_BIN" export-flink "$w/edited" "$w/edited-flink" >/dev/null
  { python3 -c '[print(k, 1) for k in range(100)]'; echo "100 1001"; } >"$w/edited.expect"
  restore_counter export-edited "$w/edited-flink" 100000 11 3 128 --uid counter-v2 \
    --strict true --expect-file "$w/edited.expect" || failed=1

  # State made in Rewind: bootstrapped Integer counts (an older release), widened to Long.
  python3 -c 'print("key,value"); [print(f"{k},{3 * k}") for k in range(5000)]' >"$w/counts.csv"
  "$REWIND_BIN" bootstrap "$w/boot" --job counter --parallelism 2 \
    --state counter/count="$w/counts.csv" >/dev/null
  "$REWIND_BIN" migrate "$w/boot" "$w/boot-int" --cast counter/count:value=int32 >/dev/null
  "$REWIND_BIN" migrate "$w/boot-int" "$w/boot-long" --cast counter/count:value=int64 >/dev/null
  "$REWIND_BIN" export-flink "$w/boot-long" "$w/boot-flink" >/dev/null
  counts_file "$w/boot-long" counter count "$w/boot.expect"
  restore_counter export-bootstrap-widened "$w/boot-flink" 5000 0 2 128 --strict true \
    --expect-file "$w/boot.expect" || failed=1

  # From the small engine to Flink: the keyed-count example's savepoint (uid counter,
  # state count, Long keys and counts); its sink's staging list has no Flink counterpart.
  if [ -n "$engine_savepoint" ]; then
    "$REWIND_BIN" edit "$engine_savepoint" "$w/engine" --drop-state output/pending_commits >/dev/null
    "$REWIND_BIN" export-flink "$w/engine" "$w/engine-flink" >/dev/null
    counts_file "$w/engine" counter count "$w/engine.expect"
    local keys
    keys=$(wc -l <"$w/engine.expect")
    restore_counter export-engine "$w/engine-flink" "$keys" 0 2 128 --strict true \
      --expect-file "$w/engine.expect" || failed=1
  fi

  # rich-state-A at parallelism 3: every key of value, map, list and POJO state equal
  # expected_profile.json, and the open windows fire with the uninterrupted job's results.
  local started=$SECONDS
  "$REWIND_BIN" import-flink fixtures/flink/rich-state-A/savepoint-46a48f-b5c105e0343a "$w/rich" >/dev/null
  "$REWIND_BIN" export-flink "$w/rich" "$w/rich-flink" --parallelism 3 >/dev/null
  if probe_rich export-rich "$w/rich-flink" 3 && python3 tests/flink/compare_rich_state.py \
      "$work/export-rich/dump" --expected fixtures/flink/rich-state-A/expected_profile.json \
      clicks,by_kind,recent,stats,sessions >"$w/rich.out"; then
    echo "ok   flink: export of rich-state-A at parallelism 3: $(cat "$w/rich.out" | cut -c6-) ($((SECONDS - started)) s)"
  else
    cat "$w/rich.out"; failed=1
  fi

  # Bootstrap from JSON lines: value, map and POJO state of the rich-state job's profile.
  started=$SECONDS
  python3 - "$w" <<'PY'
import json, sys
w = sys.argv[1]
e = json.load(open("fixtures/flink/rich-state-A/expected_profile.json"))
with open(f"{w}/clicks.jsonl", "w") as c, open(f"{w}/by_kind.jsonl", "w") as m, \
        open(f"{w}/stats.jsonl", "w") as s:
    for k, v in e.items():
        c.write(json.dumps({"key": k, "value": v["clicks"]}) + "\n")
        s.write(json.dumps({"key": k, "value": v["stats"]}) + "\n")
        for uk, n in v["by_kind"].items():
            m.write(json.dumps({"key": k, "user_key": uk, "value": n}) + "\n")
PY
  "$REWIND_BIN" bootstrap "$w/profile" --job profile --parallelism 2 \
    --state profile/clicks="$w/clicks.jsonl" --state profile/by_kind="$w/by_kind.jsonl" \
    --state profile/stats="$w/stats.jsonl" >/dev/null
  "$REWIND_BIN" export-flink "$w/profile" "$w/profile-flink" \
    --pojo 'profile/stats=flinksamples.RichStateJob$Stats' >/dev/null
  if probe_rich export-bootstrap-pojo "$w/profile-flink" 2 && python3 tests/flink/compare_rich_state.py \
      "$work/export-bootstrap-pojo/dump" --expected fixtures/flink/rich-state-A/expected_profile.json \
      clicks,by_kind,stats >"$w/profile.out"; then
    echo "ok   flink: bootstrap from JSON with a POJO state: $(cut -c6- "$w/profile.out") ($((SECONDS - started)) s)"
  else
    cat "$w/profile.out"; failed=1
  fi
  # Keys whose hashCode is the job's own code (a POJO): the import keeps each key's key
  # group, and the export puts every key back in it, at parallelism 3.
  started=$SECONDS
  "$REWIND_BIN" import-flink fixtures/flink/pojo-key/savepoint-57aac4-e3be901eb7e6 "$w/pojo" >/dev/null
  "$REWIND_BIN" export-flink "$w/pojo" "$w/pojo-flink" --parallelism 3 >/dev/null
  if java_run -Dlog.file="$w/pojo.log" PojoKeyCheck restore --n 1000 \
      --path "file://$w/pojo-flink" --parallelism 3 --checkpoint-dir "file://$w/pojo-chk" \
      >"$w/pojo.out" 2>"$w/pojo.err"; then
    echo "ok   flink: export of POJO keys at parallelism 3: $(tail -n 1 "$w/pojo.out") ($((SECONDS - started)) s)"
  else
    echo "FAIL flink: export of POJO keys: $(tail -n 1 "$w/pojo.out")"; tail -n 20 "$w/pojo.err"; failed=1
  fi
  return "$failed"
}

failed=0
restore_counter hashmap-canonical \
  fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761 100000 11 3 128 || failed=1
restore_counter rocksdb-canonical \
  fixtures/flink/java-rocksdb-canonical-n100000/savepoint-ac0c02-efa32d629dbf 100000 11 3 128 || failed=1
rich_state || failed=1
exports || failed=1
exit "$failed"
