#!/usr/bin/env bash
# Rewind against Flink on one counter savepoint, measured in one run (median of RUNS):
#  - `rewind export-flink` and `rewind import-flink` in MB/s of the Flink savepoint, against
#    `cp -r` of the same directory (each synced to disk before the clock stops);
#  - a real Flink 2.3 restoring what export wrote, against Flink restoring its own canonical
#    savepoint of the same state (tests/flink/bench/FlinkRestoreBench.java: the time from
#    submitting the job until every counter subtask has its keyed state, MiniCluster start
#    included, and until every key was checked).
#
#   bash scripts/bench-flink.sh [KEYS [RUNS]]      (default 10000000 keys, 3 runs)
#
# Needs what tests/flink/check.sh needs (JDK 17, Flink's jars via scripts/flink-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
keys="${1:-10000000}"
runs="${2:-3}"
w="$PWD/target/bench-tmp/flink-$$"
mkdir -p "$w"
trap 'rm -rf "$w"' EXIT
lib="$(bash scripts/flink-env.sh | tail -n 1)"
cargo build --release --quiet -p rewind-cli
R="$PWD/target/release/rewind"
javac -nowarn -d "$w/classes" -cp "$lib/*" tests/flink/LocalFlink.java tests/flink/bench/FlinkRestoreBench.java 2>/dev/null
flink() {
  java -Xmx6g -XX:+UseParallelGC -Dlog4j.configurationFile="$PWD/tests/flink/log4j2.properties" \
    -Dlog.file="$w/flink.log" -cp "$lib/*:$w/classes" FlinkRestoreBench "$@"
}
# seconds COMMAND...: wall time of a command, output discarded.
seconds() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null
  end=$(date +%s%N)
  echo "scale=3; ($end - $start) / 1000000000" | bc
}

flink make --n "$keys" --out "file://$w/own" --checkpoint-dir "file://$w/chk" >"$w/make.out"
own="$(ls -d "$w"/own/savepoint-*)"
bytes=$(du -sb "$own" | cut -f1)
"$R" import-flink "$own" "$w/imported" >/dev/null
echo "Flink's own canonical savepoint: $keys keys, $bytes bytes"

: >"$w/times"
for i in $(seq "$runs"); do
  rm -rf "$w/copy" "$w/imp" "$w/exp"
  echo "cp $(seconds bash -c "cp -r '$own' '$w/copy' && sync")" >>"$w/times"
  echo "import $(seconds bash -c "'$R' import-flink '$own' '$w/imp' && sync")" >>"$w/times"
  echo "export $(seconds bash -c "'$R' export-flink '$w/imported' '$w/exp' && sync")" >>"$w/times"
  for which in own exp; do
    path="$own"
    [ "$which" = exp ] && path="$w/exp"
    line=$(flink restore --n "$keys" --path "file://$path" --checkpoint-dir "file://$w/chk-$which")
    echo "restore-$which $(echo "$line" | awk '{print $2 / 1000, $4 / 1000}')" >>"$w/times"
  done
done
python3 - "$w/times" "$bytes" <<'PY'
import statistics, sys
times, size = {}, int(sys.argv[2]) / 1e6
for line in open(sys.argv[1]):
    name, *values = line.split()
    times.setdefault(name, []).append([float(v) for v in values])
med = lambda name, i=0: statistics.median(v[i] for v in times[name])
runs = len(times["cp"])
print(f"median of {runs} runs ({size:.0f} MB savepoint)")
for name in ("cp", "import", "export"):
    print(f"  {name:<8} {med(name):7.2f} s  {size / med(name):7.1f} MB/s  "
          f"({med(name) / med('cp'):.1f}x cp -r)")
print(f"  export / import time: {med('export') / med('import'):.2f}")
for which, label in (("own", "Flink's own savepoint"), ("exp", "Rewind's export")):
    print(f"  Flink restores {label:<22} state in {med('restore-' + which):6.2f} s, "
          f"all keys checked in {med('restore-' + which, 1):6.2f} s")
print(f"  restore of the export / of Flink's own: "
      f"{med('restore-exp') / med('restore-own'):.2f} (state), "
      f"{med('restore-exp', 1) / med('restore-own', 1):.2f} (all keys)")
PY
