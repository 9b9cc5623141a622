"""Compares what a real Flink read back from the rich-state sample (RichStateJob's probe
dump: every key of `profile`, every open window of `sessions`) with what
`rewind import-flink` + `rewind state` read from the same savepoint without a JVM.

    python3 compare_rich_state.py DUMP_DIR REWIND_BIN IMPORTED_SAVEPOINT

or with the sample's expected content of every key (`expected_profile.json`), for
savepoints Rewind wrote: every state in STATES must equal it, every other state be empty,
and the windows that fire must be `expected_sessions.json`'s when STATES lists `sessions`,
none otherwise:

    python3 compare_rich_state.py DUMP_DIR --expected EXPECTED_JSON STATES

Prints one line per check; exits 1 on any difference. Standard library only."""
import glob
import json
import os
import subprocess
import sys


def rows(rewind, sp, uid, state):
    out = subprocess.run([rewind, "state", sp, uid, state, "--format", "json"],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def flink_dump(dump):
    flink = {}
    for f in glob.glob(os.path.join(dump, "profile-*.txt")):
        for line in open(f):
            d = json.loads(line)
            flink[d["key"]] = d
    return flink


def against_expected(dump, expected_file, states):
    expected = json.load(open(expected_file))
    flink = flink_dump(dump)
    empty = {"clicks": None, "recent": [], "stats": None, "by_kind": {}}
    differ = []
    for k, want in expected.items():
        got = flink.get(k)
        for f in ("clicks", "recent", "stats", "by_kind"):
            value = want[f] if f in states else empty[f]
            if got is None or got.get(f) != value:
                differ.append((k, f, value, None if got is None else got.get(f)))
                break
    fired = sorted(tuple(int(x) for x in line.split())
                   for f in glob.glob(os.path.join(dump, "sessions-*.txt")) for line in open(f))
    want_fired = []
    if "sessions" in states:
        sessions = os.path.join(os.path.dirname(expected_file), "expected_sessions.json")
        want_fired = sorted(tuple(w[:4]) for w in json.load(open(sessions))["open_windows"])
    if differ or len(flink) != len(expected) or fired != want_fired:
        print(f"FAIL profile: {len(differ)} keys differ from {expected_file} (first: "
              f"{differ[:1]}), {len(flink)} keys dumped, windows fired {fired}, expected {want_fired}")
        return 1
    print(f"ok   profile: {len(flink)} keys read by Flink equal {os.path.basename(expected_file)} "
          f"({', '.join(states)}; the other states empty), {len(fired)} windows fired as expected")
    return 0


def main():
    if len(sys.argv) == 5 and sys.argv[2] == "--expected":
        sys.exit(against_expected(sys.argv[1], sys.argv[3], sys.argv[4].split(",")))
    dump, rewind, sp = sys.argv[1:4]
    flink = {}
    for f in glob.glob(os.path.join(dump, "profile-*.txt")):
        for line in open(f):
            d = json.loads(line)
            flink[d["key"]] = d
    ours = {}
    for r in rows(rewind, sp, "profile", "clicks"):
        ours.setdefault(r["key"], {})["clicks"] = r["value"]
    for r in rows(rewind, sp, "profile", "recent"):
        ours.setdefault(r["key"], {})["recent"] = r["value"]
    for r in rows(rewind, sp, "profile", "stats"):
        ours.setdefault(r["key"], {})["stats"] = r["value"]
    for r in rows(rewind, sp, "profile", "by_kind"):
        ours.setdefault(r["key"], {}).setdefault("by_kind", {})[r["user_key"]] = r["value"]
    failed = 0
    differ = [k for k in flink
              if {f: flink[k][f] for f in ("clicks", "recent", "stats", "by_kind")} != ours.get(k)]
    missing = sorted(set(ours) - set(flink))
    if differ or missing or not flink:
        failed = 1
        print(f"FAIL profile: {len(differ)} keys differ, {len(missing)} only in the import; "
              f"first: {differ[:1] or missing[:1]}")
        for k in differ[:3]:
            print(f"  flink {flink[k]}\n  rewind {ours.get(k)}")
    else:
        print(f"ok   profile: {len(flink)} keys read by Flink equal rewind import-flink's "
              f"(clicks, by_kind, recent, stats)")

    windows = sorted(tuple(int(x) for x in line.split())
                     for f in glob.glob(os.path.join(dump, "sessions-*.txt")) for line in open(f))
    contents = sorted((r["key"], r["namespace"]["start"], r["namespace"]["end"], r["value"])
                      for r in rows(rewind, sp, "sessions", "window-contents"))
    if windows != contents or not windows:
        failed = 1
        print(f"FAIL sessions: Flink fired {windows}, rewind imported {contents}")
    else:
        print(f"ok   sessions: the {len(windows)} open windows Flink fired after restore equal "
              f"rewind import-flink's window contents")
    sys.exit(failed)


if __name__ == "__main__":
    main()
