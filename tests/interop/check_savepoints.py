#!/usr/bin/env python3
"""Independent interoperability check of Rewind savepoints.

Reads savepoints with code no one on the project wrote: pyarrow for Parquet, the `xxhash`
package for XXH3, `google-crc32c` for CRC-32C and `jsonschema` for the manifest schema.
Nothing here imports or calls Rewind; the format knowledge is re-implemented from the spec.
Format 1.0 and 1.1, including lean keyed shards (reader feature `lean_keyed_shards`), whose
key hashes this checker computes from the keys, and incremental checkpoints (reader feature
`incremental_checkpoints`): shards in sibling folders and delta layers, which it merges and,
for a golden fixture, compares with the rows `rewind state` recorded.

Usage:
    python check_savepoints.py DIR [DIR...]   check every savepoint in/under each DIR
    python check_savepoints.py --self-test    check this checker (hash vectors, type parser,
                                              and a hand-built savepoint, good and corrupted)

A DIR is a savepoint root (it holds `_manifest.json`) or a folder whose subfolders, at any
depth, are savepoint roots. Prints one line per savepoint, one `FAIL <file>: <problem>` line
per problem, and ends with `N passed, M failed`. Exit code: 0 all passed, 1 some failed,
2 usage or environment error. Install the dependencies with `bash scripts/python-env.sh`.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import os
import re
import struct
import sys
import tempfile
from dataclasses import dataclass, field

try:
    import google_crc32c
    import pyarrow as pa
    import pyarrow.parquet as pq
    import xxhash
except ImportError as e:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"check_savepoints: missing Python package ({e}); install tests/interop/requirements.txt,\n"
        "e.g. run it with: \"$(bash scripts/python-env.sh)\" tests/interop/check_savepoints.py ...\n"
    )
    sys.exit(2)

MANIFEST_FILE = "_manifest.json"
FORMAT_MARKER = "rewind-savepoint"
SUPPORTED_MAJOR = 1
KEY_HASH_ALGORITHM = "xxh3_64"
LEAN_KEYED_SHARDS = "lean_keyed_shards"  # format 1.1: keyed shards may omit key_hash
INCREMENTAL_CHECKPOINTS = "incremental_checkpoints"  # format 1.1: shared files, delta layers
KNOWN_READER_FEATURES: frozenset = frozenset({LEAN_KEYED_SHARDS, INCREMENTAL_CHECKPOINTS})
HASH_RANGES_KEY = b"rewind.key_hash_ranges"  # a lean shard's row-group ranges
REQUIRED_PARQUET_METADATA = ("rewind.writer", "rewind.format_version", "ARROW:schema")
TIMER_DOMAINS = ("event_time", "processing_time")
STATE_KINDS = ("value", "list", "map", "timers", "operator_list")
REDISTRIBUTIONS = ("split", "union", "broadcast")
U64_MAX = (1 << 64) - 1
BATCH_ROWS = 65536
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SCHEMA = os.path.join(REPO, "spec", "manifest.schema.json")


# ---------------------------------------------------------------------------------------------
# Type strings (spec: "Types")
# ---------------------------------------------------------------------------------------------


class TypeStringError(ValueError):
    pass


_SIMPLE_TYPES = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "utf8": pa.string(),
    "large_utf8": pa.large_string(),
    "binary": pa.binary(),
    "large_binary": pa.large_binary(),
    "date32": pa.date32(),
}
_TIME_UNITS = ("s", "ms", "us", "ns")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_WORD = re.compile(r"[A-Za-z0-9_]*")


class _TypeParser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def error(self, reason: str) -> TypeStringError:
        return TypeStringError(f"type {self.text!r}: {reason} at byte {self.pos}")

    def skip_ws(self) -> None:
        while self.text.startswith(" ", self.pos):
            self.pos += 1

    def expect(self, token: str) -> None:
        self.skip_ws()
        if not self.text.startswith(token, self.pos):
            raise self.error(f"expected {token!r}")
        self.pos += len(token)

    def word(self) -> str:
        self.skip_ws()
        m = _WORD.match(self.text, self.pos)
        self.pos = m.end()
        return m.group(0)

    def parse(self) -> pa.DataType:
        word = self.word()
        if word in _SIMPLE_TYPES:
            return _SIMPLE_TYPES[word]
        if word == "timestamp":
            self.expect("[")
            unit = self.word()
            if unit not in _TIME_UNITS:
                raise self.error("expected a time unit s, ms, us or ns")
            self.expect("]")
            return pa.timestamp(unit)
        if word == "list":
            self.expect("<")
            item = self.parse()
            self.expect(">")
            return pa.list_(pa.field("item", item, nullable=True))
        if word == "map":
            self.expect("<")
            key = self.parse()
            self.expect(",")
            value = self.parse()
            self.expect(">")
            return pa.map_(key, value)
        if word == "struct":
            self.expect("<")
            fields = []
            while True:
                name = self.word()
                if not _FIELD_NAME.match(name):
                    raise self.error(f"struct field name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
                if any(f.name == name for f in fields):
                    raise self.error(f"duplicate struct field {name!r}")
                self.expect(":")
                fields.append(pa.field(name, self.parse(), nullable=True))
                self.skip_ws()
                if self.text.startswith(",", self.pos):
                    self.pos += 1
                else:
                    break
            self.expect(">")
            return pa.struct(fields)
        if word == "":
            raise self.error("expected a type")
        raise self.error(f"unknown type {word!r}")


def parse_type(text: str) -> pa.DataType:
    """The pyarrow type a manifest type string names."""
    if not isinstance(text, str):
        raise TypeStringError(f"type {text!r} is not a string")
    p = _TypeParser(text)
    t = p.parse()
    p.skip_ws()
    if p.pos != len(text):
        raise p.error("unexpected text after the type")
    return t


def type_string(t: pa.DataType) -> str:
    """The canonical type string of a pyarrow type, or pyarrow's own name if it has none."""
    for name, simple in _SIMPLE_TYPES.items():
        if t == simple:
            return name
    if pa.types.is_timestamp(t) and t.tz is None:
        return f"timestamp[{t.unit}]"
    if pa.types.is_map(t):
        return f"map<{type_string(t.key_type)}, {type_string(t.item_type)}>"
    if pa.types.is_list(t):
        return f"list<{type_string(t.value_type)}>"
    if pa.types.is_struct(t) and t.num_fields > 0:
        inner = ", ".join(f"{t.field(i).name}: {type_string(t.field(i).type)}" for i in range(t.num_fields))
        return f"struct<{inner}>"
    return f"(arrow {t})"


def same_type(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Equal as format types: nullability and list/map child field names do not count."""
    if pa.types.is_map(expected) or pa.types.is_map(actual):
        return (
            pa.types.is_map(expected)
            and pa.types.is_map(actual)
            and same_type(actual.key_type, expected.key_type)
            and same_type(actual.item_type, expected.item_type)
        )
    if pa.types.is_list(expected) or pa.types.is_list(actual):
        return (
            pa.types.is_list(expected)
            and pa.types.is_list(actual)
            and same_type(actual.value_type, expected.value_type)
        )
    if pa.types.is_struct(expected) or pa.types.is_struct(actual):
        if not (pa.types.is_struct(expected) and pa.types.is_struct(actual)):
            return False
        if actual.num_fields != expected.num_fields:
            return False
        return all(
            actual.field(i).name == expected.field(i).name
            and same_type(actual.field(i).type, expected.field(i).type)
            for i in range(actual.num_fields)
        )
    return actual == expected


def is_key_type(t: pa.DataType) -> bool:
    """Types that can be hashed: the primitives except floats, and non-empty structs of those."""
    if pa.types.is_struct(t):
        return t.num_fields > 0 and all(is_key_type(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_timestamp(t):
        return t.tz is None
    return any(t == s for n, s in _SIMPLE_TYPES.items() if n not in ("float32", "float64"))


# ---------------------------------------------------------------------------------------------
# Key hashing (spec: "Key hashing")
# ---------------------------------------------------------------------------------------------


class KeyHashError(ValueError):
    """A key that cannot be hashed (null, or of a type that is not a key type)."""


def _first_null(arr: pa.Array) -> int:
    for i, v in enumerate(arr.is_null().to_pylist()):
        if v:
            return i
    return -1


def encode_keys(arr: pa.Array) -> list:
    """The canonical encoding (bytes) of every key in `arr`."""
    if isinstance(arr, pa.ChunkedArray):
        return [e for chunk in arr.chunks for e in encode_keys(chunk)]
    t = arr.type
    if arr.null_count:
        raise KeyHashError(f"key in row {_first_null(arr)} is null; keys cannot be null")
    if pa.types.is_boolean(t):
        return [b"\x01" if v else b"\x00" for v in arr.to_pylist()]
    if pa.types.is_signed_integer(t):
        return [struct.pack("<q", v) for v in arr.to_pylist()]
    if pa.types.is_unsigned_integer(t):
        return [struct.pack("<Q", v) for v in arr.to_pylist()]
    if pa.types.is_date32(t):
        return [struct.pack("<q", v) for v in arr.cast(pa.int32()).to_pylist()]
    if pa.types.is_timestamp(t) and t.tz is None:
        return [struct.pack("<q", v) for v in arr.cast(pa.int64()).to_pylist()]
    if pa.types.is_string(t):
        return arr.cast(pa.binary()).to_pylist()  # raw bytes, no UTF-8 round trip
    if pa.types.is_large_string(t):
        return arr.cast(pa.large_binary()).to_pylist()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return arr.to_pylist()
    if pa.types.is_struct(t) and t.num_fields > 0:
        columns = []
        for i, child in enumerate(arr.flatten()):  # flatten() applies the parent's offset
            try:
                columns.append(encode_keys(child))
            except KeyHashError as e:
                raise KeyHashError(f"struct field {t.field(i).name!r}: {e}") from None
        return [
            b"".join(struct.pack("<I", len(parts[i])) + parts[i] for i in range(len(parts)))
            for parts in ([c[row] for c in columns] for row in range(len(arr)))
        ]
    raise KeyHashError(f"type {t} is not a key type")


def key_hashes(arr: pa.Array) -> list:
    """XXH3-64 (seed 0) of the canonical encoding of every key in `arr`."""
    h = xxhash.xxh3_64_intdigest
    return [h(e, 0) for e in encode_keys(arr)]


# ---------------------------------------------------------------------------------------------
# Manifest rules
# ---------------------------------------------------------------------------------------------

_HEX16 = re.compile(r"[0-9a-fA-F]{16}\Z")
_CRC = re.compile(r"[0-9a-f]{8}\Z")
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}\Z")


def path_problem(path) -> str | None:
    """Why a shard path is not a clean relative path inside the root, or None."""
    if not isinstance(path, str) or not path:
        return "empty or non-string path"
    if len(path.encode()) > 1024:
        return "path longer than 1024 bytes"
    if path.startswith("/"):
        return "absolute path"
    if "\\" in path:
        return "backslash in path"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in path):
        return "control character in path"
    if ":" in path:
        return "colon in path"
    for seg in path.split("/"):
        if seg == "":
            return "empty path segment"
        if seg in (".", ".."):
            return "path segment escapes the savepoint root"
    if path == MANIFEST_FILE:
        return "a shard cannot be the manifest"
    return None


def parse_hash_range(r):
    if not isinstance(r, dict) or set(r) != {"start", "end"}:
        raise ValueError(f"hash_range {r!r} is not {{start, end}}")
    s, e = r["start"], r["end"]
    for v in (s, e):
        if not isinstance(v, str) or not _HEX16.match(v):
            raise ValueError(f"hash {v!r} is not 16 hex digits")
    lo, hi = int(s, 16), int(e, 16)
    if lo > hi:
        raise ValueError(f"hash range start {s} > end {e}")
    return lo, hi


def coverage_problems(ranges) -> list:
    out = []
    nxt = 0  # first hash not yet covered; None once U64_MAX is covered
    covered_to = None
    for lo, hi in sorted(ranges):
        if nxt is not None and lo > nxt:
            out.append(f"no shard covers key hashes {nxt:016x}..={lo - 1:016x}")
        if covered_to is not None and lo <= covered_to:
            out.append(f"several shards cover key hashes {lo:016x}..={min(covered_to, hi):016x}")
        covered_to = hi if covered_to is None else max(covered_to, hi)
        nxt = covered_to + 1 if covered_to < U64_MAX else None
    if nxt is not None:
        out.append(f"no shard covers key hashes {nxt:016x}..={U64_MAX:016x}")
    return out


@dataclass
class StatePlan:
    """What one state's shards must look like, derived from the manifest."""

    uid: str
    name: str
    kind: str
    columns: list  # [(name, pa.DataType)]
    shards: list  # raw shard dicts that passed the manifest rules
    rows: int = 0
    lean_allowed: bool = False  # the manifest lists lean_keyed_shards
    layered: bool = False  # some shard is a delta (layer >= 1)


def expected_columns(st: dict, types: dict) -> list:
    kind = st["kind"]
    if kind == "operator_list":
        return [("value", types["value_type"])]
    cols = [("key_hash", pa.uint64()), ("key", types["key_type"])]
    if types.get("namespace_type") is not None:
        cols.append(("namespace", types["namespace_type"]))
    if kind == "map":
        cols.append(("user_key", types["user_key_type"]))
    if kind == "timers":
        cols += [("domain", pa.string()), ("timestamp", pa.int64())]
    else:
        cols.append(("value", types["value_type"]))
    return cols


def state_type_problems(st: dict, types: dict) -> list:
    kind = st["kind"]
    out = []
    if kind != "operator_list":
        if types.get("key_type") is None:
            out.append(f"{kind} state needs a key_type")
        elif not is_key_type(types["key_type"]):
            out.append(f"key_type {st.get('key_type')!r} cannot be hashed")
        ns = types.get("namespace_type")
        if ns is not None and not is_key_type(ns):
            out.append("namespace_type must be a key type")
        if "redistribution" in st and st["redistribution"] is not None:
            out.append("redistribution is for operator_list state only")
    else:
        if any(types.get(k) is not None for k in ("key_type", "namespace_type", "user_key_type")):
            out.append("operator_list state has no key, namespace or user key")
        if st.get("redistribution") not in REDISTRIBUTIONS:
            out.append(f"operator_list state needs a redistribution ({', '.join(REDISTRIBUTIONS)})")
    if kind == "map" and types.get("user_key_type") is None:
        out.append("map state needs a user_key_type")
    if kind != "map" and types.get("user_key_type") is not None:
        out.append(f"{kind} state has no user_key_type")
    if kind == "timers":
        if types.get("value_type") is not None:
            out.append("timers state has no value_type")
    elif types.get("value_type") is None:
        out.append(f"{kind} state needs a value_type")
    elif kind == "list" and not pa.types.is_list(types["value_type"]):
        out.append("list state needs a value_type of list<...>")
    return out


def plan_manifest(m, fail) -> list:
    """Checks the manifest's own rules; returns the states whose shards can be checked."""
    if not isinstance(m, dict):
        fail("the manifest is not a JSON object")
        return []
    if m.get("format") != FORMAT_MARKER:
        fail(f"format is {m.get('format')!r}, expected {FORMAT_MARKER!r}: not a Rewind savepoint")
        return []
    version = m.get("version")
    vm = re.fullmatch(r"(\d+)\.(\d+)", version) if isinstance(version, str) else None
    if not vm:
        fail(f"version {version!r} is not MAJOR.MINOR")
        return []
    if int(vm.group(1)) != SUPPORTED_MAJOR:
        fail(f"version {version} is newer than this checker supports ({SUPPORTED_MAJOR}.x)")
        return []
    features = m.get("reader_features", [])
    if not isinstance(features, list):
        fail("reader_features is not a list")
        return []
    unknown = [f for f in features if f not in KNOWN_READER_FEATURES]
    if unknown:
        fail(f"needs reader features this checker does not know: {', '.join(map(str, unknown))}")
        return []
    if m.get("key_hash") != KEY_HASH_ALGORITHM:
        fail(f"key_hash is {m.get('key_hash')!r}, expected {KEY_HASH_ALGORITHM!r}")
    ops = m.get("operators")
    if not isinstance(ops, list):
        fail("operators is missing or not a list")
        return []
    plans = []
    uids, paths = set(), set()
    for i, op in enumerate(ops):
        at = f"operators[{i}]"
        if not isinstance(op, dict):
            fail(f"{at} is not an object")
            continue
        uid = op.get("uid")
        if not isinstance(uid, str) or not _NAME.match(uid) or uid.startswith("."):
            fail(f"{at}: bad operator uid {uid!r}")
            continue
        at = f"operator {uid!r}"
        if uid in uids:
            fail(f"{at}: duplicate uid")
        uids.add(uid)
        par = op.get("parallelism")
        if not isinstance(par, int) or isinstance(par, bool) or par < 1:
            fail(f"{at}: parallelism {par!r} must be an integer of at least 1")
            continue
        states = op.get("states", [])
        if not isinstance(states, list):
            fail(f"{at}: states is not a list")
            continue
        names = set()
        for j, st in enumerate(states):
            if not isinstance(st, dict):
                fail(f"{at}.states[{j}] is not an object")
                continue
            name = st.get("name")
            if not isinstance(name, str) or not _NAME.match(name) or name.startswith("."):
                fail(f"{at}.states[{j}]: bad state name {name!r}")
                continue
            sat = f"state {uid}/{name}"
            if name in names:
                fail(f"{sat}: duplicate state name")
            names.add(name)
            kind = st.get("kind")
            if kind not in STATE_KINDS:
                fail(f"{sat}: kind {kind!r} is not one of {', '.join(STATE_KINDS)}")
                continue
            types, ok = {}, True
            for tk in ("key_type", "namespace_type", "user_key_type", "value_type"):
                if st.get(tk) is None:
                    continue
                try:
                    types[tk] = parse_type(st[tk])
                except TypeStringError as e:
                    fail(f"{sat}: {tk}: {e}")
                    ok = False
            if not ok:
                continue
            tprobs = state_type_problems(st, types)
            for p in tprobs:
                fail(f"{sat}: {p}")
            if tprobs:
                continue
            shards = st.get("shards")
            if not isinstance(shards, list):
                fail(f"{sat}: shards is missing or not a list")
                continue
            plan = StatePlan(uid, name, kind, expected_columns(st, types), [],
                             lean_allowed=LEAN_KEYED_SHARDS in features)
            ranges, subtasks = {}, set()  # ranges by layer
            for k, sh in enumerate(shards):
                shat = f"{sat}.shards[{k}]"
                if not isinstance(sh, dict):
                    fail(f"{shat} is not an object")
                    continue
                p = path_problem(sh.get("path"))
                if p:
                    fail(f"{shat}: path {sh.get('path')!r}: {p}")
                    continue
                sibling = sh.get("sibling")
                layer = sh.get("layer")
                layer = 0 if layer is None else layer
                if sibling is not None and (not isinstance(sibling, str) or "/" in sibling or path_problem(sibling)):
                    fail(f"{shat}: sibling {sibling!r} is not one portable folder name")
                    continue
                if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer <= 0xFFFFFFFF:
                    fail(f"{shat}: layer {layer!r} is not a u32")
                    continue
                if (sibling is not None or layer > 0) and INCREMENTAL_CHECKPOINTS not in features:
                    fail(f"{shat}: a sibling or a layer needs the reader feature {INCREMENTAL_CHECKPOINTS}")
                    continue
                if layer > 0 and kind == "operator_list":
                    fail(f"{shat}: only keyed states have delta layers")
                    continue
                sh["_sibling"], sh["_layer"] = sibling, layer
                file_key = sh["path"] if sibling is None else f"{sibling}/{sh['path']}"
                if file_key.lower() in paths:
                    fail(f"{shat}: path {file_key!r} listed twice (or twice up to letter case)")
                    continue
                paths.add(file_key.lower())
                bad = False
                for numk in ("rows", "bytes"):
                    v = sh.get(numk)
                    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                        fail(f"{shat}: {numk} {v!r} is not a non-negative integer")
                        bad = True
                crc = sh.get("crc32c")
                if not isinstance(crc, str) or not _CRC.match(crc):
                    fail(f"{shat}: crc32c {crc!r} is not 8 lowercase hex digits")
                    bad = True
                if kind != "operator_list":
                    if sh.get("hash_range") is None or sh.get("subtask") is not None:
                        fail(f"{shat}: a keyed shard needs a hash_range and no subtask")
                        bad = True
                    else:
                        try:
                            sh["_range"] = parse_hash_range(sh["hash_range"])
                            ranges.setdefault(layer, []).append(sh["_range"])
                        except ValueError as e:
                            fail(f"{shat}: {e}")
                            bad = True
                else:
                    t = sh.get("subtask")
                    if sh.get("hash_range") is not None or not isinstance(t, int) or isinstance(t, bool):
                        fail(f"{shat}: an operator state shard needs a subtask and no hash_range")
                        bad = True
                    elif not 0 <= t < par:
                        fail(f"{shat}: subtask {t} is not below parallelism {par}")
                        bad = True
                    elif t in subtasks:
                        fail(f"{sat}: subtask {t} has more than one shard")
                    subtasks.add(t)
                if not bad:
                    plan.shards.append(sh)
                    plan.rows += sh["rows"]
                    plan.layered |= layer > 0
            if kind != "operator_list":
                # The base tiles the hash space; a delta layer may leave gaps, not overlap.
                for p in coverage_problems(ranges.get(0, [])):
                    fail(f"{sat}: {p}")
                for layer, rs in sorted(ranges.items()):
                    for p in coverage_problems(rs):
                        if layer and p.startswith("several"):
                            fail(f"{sat}: layer {layer}: {p}")
            plans.append(plan)
        source = op.get("source")
        if source is not None:
            splits = source.get("splits") if isinstance(source, dict) else None
            if not isinstance(splits, list):
                fail(f"{at}: source.splits is missing or not a list")
            else:
                ids = set()
                for k, sp in enumerate(splits):
                    sid = sp.get("id") if isinstance(sp, dict) else None
                    if not isinstance(sid, str) or not sid or sid in ids:
                        fail(f"{at}: source.splits[{k}]: split id {sid!r} is empty, missing or repeated")
                    ids.add(sid)
                    if isinstance(sp, dict) and "position" not in sp:
                        fail(f"{at}: source.splits[{k}]: no position")
    return plans


# ---------------------------------------------------------------------------------------------
# Shard checks
# ---------------------------------------------------------------------------------------------


def file_crc32c(path: str) -> int:
    crc = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return crc
            crc = google_crc32c.extend(crc, chunk)


class _FirstOf:
    """Keeps the first message of a kind and counts the rest, so a bad shard gives one line."""

    def __init__(self):
        self.first = None
        self.more = 0

    def add(self, msg: str) -> None:
        if self.first is None:
            self.first = msg
        else:
            self.more += 1

    def emit(self, fail) -> None:
        if self.first is not None:
            fail(self.first + (f" (and {self.more} more rows)" if self.more else ""))


def shard_home(root: str, sh: dict) -> str:
    """The folder holding the shard's file: the root, or its sibling folder."""
    if sh.get("_sibling") is None:
        return root
    return os.path.join(os.path.dirname(os.path.abspath(root)), sh["_sibling"])


def check_shard(root: str, plan: StatePlan, sh: dict, fail) -> None:
    rel = sh["path"]
    root = shard_home(root, sh)
    path = os.path.join(root, *rel.split("/"))
    real_root = os.path.realpath(root)
    if os.path.commonpath([os.path.realpath(path), real_root]) != real_root:
        fail("the file resolves outside the savepoint root (symlink?)")
        return
    if not os.path.isfile(path):
        fail("shard file is missing")
        return
    size = os.path.getsize(path)
    if size != sh["bytes"]:
        fail(f"file is {size} bytes, the manifest says {sh['bytes']}")
        return
    crc = f"{file_crc32c(path):08x}"
    if crc != sh["crc32c"]:
        fail(f"CRC-32C is {crc}, the manifest says {sh['crc32c']}")
        return
    try:
        pf = pq.ParquetFile(path)
        schema = arrow_schema_of(pf)
    except Exception as e:  # pyarrow raises several kinds
        fail(f"not a readable Parquet file: {_one_line(e)}")
        return
    kv = pf.metadata.metadata or {}
    missing = [k for k in REQUIRED_PARQUET_METADATA if k.encode() not in kv]
    if missing:
        fail(f"Parquet key-value metadata lacks {', '.join(missing)}")
    names = list(schema.names)
    columns = list(plan.columns)
    if sh.get("_layer"):
        columns.append(("deleted", pa.bool_()))  # a delta shard's delete marks
    lean = plan.kind != "operator_list" and plan.lean_allowed and names == [n for n, _ in columns[1:]]
    if lean:
        columns = columns[1:]
    want = [n for n, _ in columns]
    if names != want:
        fail(f"columns are {names}, a {plan.kind} state's shard must have {want}")
        return
    group_ranges = None
    if lean:
        group_ranges = lean_group_ranges(kv, pf.metadata)
        if isinstance(group_ranges, str):
            fail(group_ranges)
            return
    schema_ok = True
    for (name, expected), f in zip(columns, schema):
        if not same_type(f.type, expected):
            fail(f"column {name!r} is {type_string(f.type)}, the manifest says {type_string(expected)}")
            schema_ok = False
    num_rows = pf.metadata.num_rows
    if num_rows != sh["rows"]:
        fail(f"{num_rows} rows, the manifest says {sh['rows']}")
    if not schema_ok:
        return
    check_rows(pf, plan, sh, fail, group_ranges)


def lean_group_ranges(kv: dict, metadata):
    """A lean shard's recorded (first row, min, max) per row group with rows, or what is wrong."""
    if HASH_RANGES_KEY not in kv:
        return "a lean keyed shard has no rewind.key_hash_ranges in its footer"
    text = kv[HASH_RANGES_KEY].decode("utf-8", "replace")
    entries = text.split(",") if text else []
    if len(entries) != metadata.num_row_groups:
        return f"rewind.key_hash_ranges has {len(entries)} entries for {metadata.num_row_groups} row groups"
    out, first = [], 0
    for g, entry in enumerate(entries):
        rows = metadata.row_group(g).num_rows
        m = re.fullmatch(r"([0-9a-f]{16})-([0-9a-f]{16})", entry)
        if entry == "empty" and rows == 0:
            continue
        if not m or rows == 0 or int(m.group(1), 16) > int(m.group(2), 16):
            return f"rewind.key_hash_ranges entry {g} {entry!r} does not describe a row group of {rows} rows"
        out.append((first, int(m.group(1), 16), int(m.group(2), 16)))
        first += rows
    return out


def arrow_schema_of(pf) -> pa.Schema:
    """The footer's ARROW:schema (spec: "Shard files" 1). Parquet has no seconds unit:
    pyarrow reads a timestamp[s] column as int64 (arrow-rs stores plain INT64 seconds) or
    timestamp[ms] (pyarrow stores milliseconds); the spec takes the types from
    ARROW:schema, so the checker does too."""
    encoded = (pf.metadata.metadata or {}).get(b"ARROW:schema")
    if encoded is None:
        return pf.schema_arrow
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(encoded)))


def with_stored_types(data, schema: pa.Schema):
    """`data` (a record batch or table) with the timestamp[s] columns of `schema` restored
    (milliseconds divided back into seconds; spec: "Canonical key encoding")."""
    if not any(_holds_seconds(f.type) for f in schema):
        return data
    columns = [c.cast(f.type) if _holds_seconds(f.type) else c for c, f in zip(data.columns, schema)]
    return type(data).from_arrays(columns, names=data.schema.names)


def _holds_seconds(t: pa.DataType) -> bool:
    if pa.types.is_timestamp(t):
        return t.unit == "s"
    return any(_holds_seconds(t.field(i).type) for i in range(t.num_fields))


def check_rows(pf, plan: StatePlan, sh: dict, fail, group_ranges=None) -> None:
    """Decodes every column; checks key hashes, order, range, nulls and timer domains. In a
    lean shard (group_ranges given) the hash is computed from the key and must lie in its
    row group's recorded range."""
    keyed = plan.kind != "operator_list"
    lo, hi = sh["_range"] if keyed else (0, U64_MAX)
    columns = plan.columns[1:] if group_ranges is not None else plan.columns
    non_null = [n for n, _ in columns if n != "value"] + (["deleted"] if sh.get("_layer") else [])
    wrong_hash, out_of_range, unsorted, nulls, domains = (_FirstOf() for _ in range(5))
    last = None
    row = 0
    try:
        stored_schema = arrow_schema_of(pf)
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            batch = with_stored_types(batch, stored_schema)
            n = batch.num_rows
            for name in non_null:
                col = batch.column(name)
                if col.null_count:
                    nulls.add(f"column {name!r} has a null in row {row + _first_null(col)}")
            if keyed and not nulls.first:
                try:
                    computed = key_hashes(batch.column("key"))
                except KeyHashError as e:
                    fail(f"rows {row}..{row + n - 1}: cannot hash the keys: {e}")
                    return
                if group_ranges is None:
                    stored = batch.column("key_hash").to_pylist()
                else:
                    stored = computed
                    firsts = [first for first, _, _ in group_ranges]
                    for i, c in enumerate(computed):
                        at = row + i
                        _, glo, ghi = group_ranges[bisect.bisect_right(firsts, at) - 1]
                        if not glo <= c <= ghi:
                            wrong_hash.add(f"row {at}: the key hashes to {c:016x}, outside its row group's "
                                           f"recorded range {glo:016x}-{ghi:016x}")
                for i, (s, c) in enumerate(zip(stored, computed)):
                    if s != c:
                        wrong_hash.add(f"row {row + i}: stored key_hash {s:016x}, the key hashes to {c:016x}")
                    if not lo <= s <= hi:
                        out_of_range.add(
                            f"row {row + i}: key_hash {s:016x} is outside the shard's hash_range "
                            f"{lo:016x}..={hi:016x}"
                        )
                    if last is not None and s < last:
                        unsorted.add(f"row {row + i}: key_hash {s:016x} is below the previous {last:016x}: "
                                     "rows are not sorted by key hash")
                    last = s
            if plan.kind == "timers":
                for i, d in enumerate(batch.column("domain").to_pylist()):
                    if d is not None and d not in TIMER_DOMAINS:
                        domains.add(f"row {row + i}: timer domain {d!r} is not one of {', '.join(TIMER_DOMAINS)}")
            row += n
    except Exception as e:
        fail(f"reading Parquet data after row {row}: {_one_line(e)}")
        return
    for c in (nulls, wrong_hash, out_of_range, unsorted, domains):
        c.emit(fail)
    if row != pf.metadata.num_rows:
        fail(f"decoded {row} rows, the Parquet footer says {pf.metadata.num_rows}")


def _one_line(e) -> str:
    s = " ".join(str(e).split())
    return s if len(s) <= 400 else s[:400] + "..."


# ---------------------------------------------------------------------------------------------
# Savepoints
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    root: str
    problems: list = field(default_factory=list)
    shards: int = 0
    rows: int = 0
    states: list = field(default_factory=list)  # [(uid, name, kind, shards, rows)]


def load_schema_validator(path: str):
    import jsonschema

    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def check_savepoint(root: str, validator=None) -> Result:
    res = Result(root)
    mpath = os.path.join(root, MANIFEST_FILE)

    def fail_at(file):
        return lambda msg: res.problems.append(f"{file}: {msg}")

    mfail = fail_at(mpath)
    try:
        with open(mpath, "rb") as f:
            m = json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        mfail(f"cannot read the manifest: {_one_line(e)}")
        return res
    except json.JSONDecodeError as e:
        mfail(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")
        return res
    if validator is not None:
        errors = sorted(validator.iter_errors(m), key=lambda e: [str(p) for p in e.absolute_path])
        for e in errors:
            where = "/".join(str(p) for p in e.absolute_path) or "(root)"
            mfail(f"manifest schema: at {where}: {_one_line(e.message)}")
    plans = plan_manifest(m, mfail)
    listed = set()
    for plan in plans:
        for sh in plan.shards:
            if sh.get("_sibling") is None:
                listed.add(sh["path"])
            home = shard_home(root, sh)
            check_shard(root, plan, sh, fail_at(os.path.join(home, *sh["path"].split("/"))))
        if plan.layered and not res.problems:
            merged = merge_layers(root, plan)
            check_recorded_rows(root, plan, merged, fail_at(root))
            plan.rows = len(merged)
        res.shards += len(plan.shards)
        res.rows += plan.rows
        res.states.append((plan.uid, plan.name, plan.kind, len(plan.shards), plan.rows))
    if isinstance(m, dict) and isinstance(m.get("operators"), list):
        for r in listed_paths(m):
            listed.add(r)
        for rel in files_under(root):
            if rel != MANIFEST_FILE and rel not in listed:
                fail_at(os.path.join(root, *rel.split("/")))("file is not listed in the manifest")
    return res


def listed_paths(m: dict):
    for op in m.get("operators") or []:
        if isinstance(op, dict) and isinstance(op.get("states"), list):
            for st in op["states"]:
                if isinstance(st, dict) and isinstance(st.get("shards"), list):
                    for sh in st["shards"]:
                        if isinstance(sh, dict) and isinstance(sh.get("path"), str) and sh.get("sibling") is None:
                            yield sh["path"]


def merge_layers(root: str, plan: StatePlan) -> list:
    """The rows of a layered state as dicts, in key-hash order: per identity (the columns
    other than key_hash and value), the row of the highest layer, unless it is a delete
    (spec: "Incremental checkpoints")."""
    by_identity = {}
    for sh in sorted(plan.shards, key=lambda s: s["_layer"]):
        path = os.path.join(shard_home(root, sh), *sh["path"].split("/"))
        table = pq.read_table(path)
        table = with_stored_types(table, arrow_schema_of(pq.ParquetFile(path)))
        rows = table.to_pylist()
        hashes = key_hashes(table.column("key").combine_chunks())
        for h, row in zip(hashes, rows):
            row.pop("key_hash", None)
            deleted = row.pop("deleted", False)
            identity = json.dumps({k: v for k, v in row.items() if k != "value"}, sort_keys=True, default=str)
            if deleted:
                by_identity.pop(identity, None)
            else:
                by_identity[identity] = (h, row)
    return sorted(by_identity.values(), key=lambda hr: (hr[0], json.dumps(hr[1], sort_keys=True, default=str)))


def check_recorded_rows(root: str, plan: StatePlan, merged: list, fail) -> None:
    """Where a golden fixture recorded the state's rows (`state-<uid>-<name>.jsonl` next to
    its `savepoint`), the merged rows must be those, up to the order of equal hashes."""
    recorded_path = os.path.join(os.path.dirname(os.path.abspath(root)), f"state-{plan.uid}-{plan.name}.jsonl")
    if os.path.basename(os.path.abspath(root)) != "savepoint" or not os.path.exists(recorded_path):
        return
    with open(recorded_path, encoding="utf-8") as f:
        recorded = [json.loads(line) for line in f if line.strip()]
    mine = [dict(key_hash=h, **row) for h, row in merged]
    canon = lambda rows: sorted(json.dumps(r, sort_keys=True) for r in rows)
    if canon(mine) != canon(recorded):
        fail(f"{plan.uid}/{plan.name}: the layers merged by this checker give {len(mine)} rows, "
             f"{recorded_path} records {len(recorded)} (or other values)")


def files_under(root: str):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for f in sorted(filenames):
            rel = f if rel_dir == "." else os.path.join(rel_dir, f)
            yield rel.replace(os.sep, "/")


def discover(top: str):
    """(savepoint roots, folders of Parquet files under no manifest) at or below `top`."""
    roots, orphans = [], []

    def walk(d: str):
        """Returns (has_manifest_below, orphan parquet dirs below)."""
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            return False, False
        if any(e.name == MANIFEST_FILE and e.is_file() for e in entries):
            roots.append(d)
            return True, False
        has_manifest, has_parquet = False, any(e.is_file() and e.name.endswith(".parquet") for e in entries)
        loose = []
        for e in entries:
            if e.is_dir(follow_symlinks=False) and not e.name.startswith("."):  # .venv, .git
                m, p = walk(e.path)
                has_manifest |= m
                if p and not m:
                    loose.append(e.path)
        if has_manifest:
            orphans.extend(loose)
            if has_parquet:
                orphans.append(d)
            return True, False
        return False, has_parquet or bool(loose)

    m, p = walk(top)
    if p and not m:
        orphans.append(top)
    return roots, orphans


def schema_refusals(validator) -> list:
    """Manifests the schema must refuse (spec/SPEC-REVIEW decisions): trailing newlines
    that a '$' anchor lets through in Python's re.search, and unportable paths and ids.
    Returns the variants it wrongly accepts."""
    base_path = os.path.join(REPO, "fixtures", "v1", "keyed-primitive", "savepoint", MANIFEST_FILE)
    with open(base_path, encoding="utf-8") as f:
        base = json.load(f)

    def shard(m):
        return m["operators"][0]["states"][0]["shards"][0]

    variants = {
        "crc32c with a newline": lambda m: shard(m).update(crc32c=shard(m)["crc32c"] + "\n"),
        "uid with a newline": lambda m: m["operators"][0].update(uid="counter\n"),
        "version with a newline": lambda m: m.update(version="1.0\n"),
        "path with a newline": lambda m: shard(m).update(path="a/b\n"),
        "key_type with a newline": lambda m: m["operators"][0]["states"][0].update(key_type="int64\n"),
        "path with a reserved name": lambda m: shard(m).update(path="state/counter/count/con.parquet"),
        "path with a trailing dot": lambda m: shard(m).update(path="state/counter./x.parquet"),
        "id with a slash": lambda m: m.update(id="a/b"),
        "unknown kind": lambda m: m.update(kind="snapshot"),
    }
    accepted = []
    for name, change in variants.items():
        m = json.loads(json.dumps(base))
        change(m)
        if not list(validator.iter_errors(m)):
            accepted.append(name)
    if list(validator.iter_errors(base)):
        accepted.append("(the unchanged fixture is refused)")
    return accepted


def run_check(dirs, schema_path) -> int:
    validator = None
    if schema_path and os.path.exists(schema_path):
        try:
            validator = load_schema_validator(schema_path)
        except ImportError:
            sys.stderr.write("check_savepoints: the jsonschema package is needed to use "
                             f"{schema_path}; install tests/interop/requirements.txt\n")
            return 2
        except Exception as e:
            sys.stderr.write(f"check_savepoints: cannot use the manifest schema {schema_path}: {_one_line(e)}\n")
            return 2
        print(f"manifest schema: {schema_path}")
        wrongly_accepted = schema_refusals(validator)
        for name in wrongly_accepted:
            print(f"FAIL manifest schema accepts a manifest it must refuse: {name}")
        if wrongly_accepted:
            return 1
    else:
        print(f"manifest schema: none ({schema_path or 'disabled'} does not exist); JSON Schema validation skipped")
    passed = failed = 0
    for top in dirs:
        if not os.path.isdir(top):
            print(f"FAIL {top}: not a directory")
            failed += 1
            continue
        roots, orphans = discover(top)
        if not roots and not orphans:
            print(f"FAIL {top}: no savepoint (no {MANIFEST_FILE}) in or under it")
            failed += 1
        for o in orphans:
            print(f"FAIL {o}: incomplete savepoint: Parquet files but no {MANIFEST_FILE}")
            failed += 1
        for root in roots:
            res = check_savepoint(root, validator)
            if res.problems:
                failed += 1
                for p in res.problems:
                    print(f"FAIL {p}")
                print(f"failed {root}: {len(res.problems)} problem(s), {res.shards} shards, {res.rows} rows")
            else:
                passed += 1
                print(f"ok {root}: {res.shards} shards, {res.rows} rows")
            for uid, name, kind, n, rows in res.states:
                print(f"    {uid}/{name} ({kind}): {n} shards, {rows} rows")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------------------------

HASH_VECTORS = [  # spec/FORMAT.md "Key hashing" and crates/format/src/hash.rs
    ("int64 0", pa.array([0], pa.int64()), 0xC77B3ABB6F87ACD9),
    ("int64 1", pa.array([1], pa.int64()), 0x2FBC593564DB792E),
    ("int64 -1", pa.array([-1], pa.int64()), 0x5111C7E47D784413),
    ("utf8 'user-42'", pa.array(["user-42"], pa.string()), 0x50FE4B21CF7B09CD),
    ("utf8 ''", pa.array([""], pa.string()), 0x2D06800538D394C2),
    ("bool true", pa.array([True], pa.bool_()), 0xE12EF9D2EB86CEEB),
    (
        "struct{a: 'ab', b: 'c'}",
        pa.StructArray.from_arrays([pa.array(["ab"]), pa.array(["c"])], names=["a", "b"]),
        0x6D5F7D8C204561EF,
    ),
]


def write_shard(path: str, table: pa.Table, kv=None) -> None:
    meta = {"rewind.writer": "check_savepoints self-test", "rewind.format_version": "1.0"}
    if kv is not None:
        meta = kv
    pq.write_table(table.replace_schema_metadata(meta), path, compression="zstd")


def shard_entry(root: str, rel: str, rows: int, hash_range=None, subtask=None) -> dict:
    p = os.path.join(root, rel)
    e = {"path": rel, "rows": rows, "bytes": os.path.getsize(p), "crc32c": f"{file_crc32c(p):08x}"}
    if hash_range is not None:
        e["hash_range"] = {"start": f"{hash_range[0]:016x}", "end": f"{hash_range[1]:016x}"}
    if subtask is not None:
        e["subtask"] = subtask
    return e


def build_tiny_savepoint(root: str, keys=range(10), hashes=None) -> dict:
    """One int64 -> uint64 value state in one shard over the whole hash space."""
    os.makedirs(os.path.join(root, "state"), exist_ok=True)
    keys = pa.array(list(keys), pa.int64())
    h = key_hashes(keys) if hashes is None else hashes
    order = sorted(range(len(keys)), key=lambda i: h[i])
    table = pa.table(
        {
            "key_hash": pa.array([h[i] for i in order], pa.uint64()),
            "key": keys.take(pa.array(order, pa.int64())),
            "value": pa.array([i * 10 for i in order], pa.uint64()),
        }
    )
    rel = "state/count-0.parquet"
    write_shard(os.path.join(root, rel), table)
    manifest = {
        "format": FORMAT_MARKER,
        "version": "1.0",
        "reader_features": [],
        "writer_features": [],
        "id": "self-test",
        "kind": "savepoint",
        "created_at": "2026-01-01T00:00:00Z",
        "writer": {"name": "check_savepoints", "version": "0"},
        "job": {"name": "self-test"},
        "checkpoint_id": 0,
        "lineage": {"operation": "generate"},
        "key_hash": KEY_HASH_ALGORITHM,
        "operators": [
            {
                "uid": "counter",
                "name": "Counter",
                "parallelism": 1,
                "states": [
                    {
                        "name": "count",
                        "kind": "value",
                        "key_type": "int64",
                        "value_type": "uint64",
                        "shards": [shard_entry(root, rel, len(keys), hash_range=(0, U64_MAX))],
                    }
                ],
            }
        ],
    }
    write_manifest(root, manifest)
    return manifest


def write_manifest(root: str, m: dict) -> None:
    with open(os.path.join(root, MANIFEST_FILE), "w", encoding="utf-8") as f:
        json.dump(m, f, indent=2)


def self_test() -> int:
    passed = failed = 0

    def check(name: str, ok: bool, detail: str = "") -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok {name}")
        else:
            failed += 1
            print(f"FAIL {name}: {detail}")

    print(f"pyarrow {pa.__version__}, xxhash {xxhash.VERSION}, google-crc32c implementation "
          f"{google_crc32c.implementation}")

    # Key hashing: the spec's vectors, computed through the same path as shard checks.
    for name, arr, want in HASH_VECTORS:
        got = key_hashes(arr)[0]
        check(f"hash {name}", got == want, f"got {got:016x}, want {want:016x}")
    s = pa.StructArray.from_arrays([pa.array(["ab", "a"]), pa.array(["c", "bc"])], names=["a", "b"])
    enc = encode_keys(s)
    check("struct encoding is length-prefixed", enc[0] == b"\x02\0\0\0ab\x01\0\0\0c", repr(enc[0]))
    h = key_hashes(s)
    check("struct (ab, c) and (a, bc) differ", h[0] != h[1])
    check("struct slices keep their offset", key_hashes(s.slice(1))[0] == h[1])
    check("int widths do not matter", key_hashes(pa.array([-5, 7], pa.int32())) == key_hashes(pa.array([-5, 7])))
    check("uint64 7 == int64 7", key_hashes(pa.array([7], pa.uint64())) == key_hashes(pa.array([7])))
    check(
        "date32/timestamp hash as i64",
        key_hashes(pa.array([3], pa.int32()).cast(pa.date32()))
        == key_hashes(pa.array([3], pa.int64()).cast(pa.timestamp("ms")))
        == key_hashes(pa.array([3])),
    )
    check("large_utf8 == utf8 == binary", len({key_hashes(pa.array(["x"], t))[0] for t in
                                              (pa.string(), pa.large_string(), pa.binary())}) == 1)
    try:
        key_hashes(pa.array([1, None], pa.int64()))
        check("null keys are refused", False, "no error")
    except KeyHashError as e:
        check("null keys are refused", "row 1" in str(e), str(e))

    # CRC-32C check value of the Castagnoli polynomial.
    check("crc32c('123456789') == e3069283", google_crc32c.value(b"123456789") == 0xE3069283)

    # Type strings.
    for text in [
        "bool", "int64", "uint64", "timestamp[ms]", "list<utf8>", "map<utf8, list<int32>>",
        "struct<count: int64, last: timestamp[us], tags: list<utf8>>", "struct<inner: struct<a: binary>>",
        "large_utf8", "large_binary", "date32", "float32",
    ]:
        got = type_string(parse_type(text))
        check(f"type {text!r} round-trips", got == text, got)
    got = type_string(parse_type(" struct< a :int8 ,b: utf8 > "))
    check("type with spaces", got == "struct<a: int8, b: utf8>", got)
    for bad in ["", "int", "list<>", "list<int8", "struct<>", "struct<a: int8, a: int8>", "struct<1a: int8>",
                "timestamp[h]", "int8 x"]:
        try:
            parse_type(bad)
            check(f"type {bad!r} is refused", False, "parsed")
        except TypeStringError:
            check(f"type {bad!r} is refused", True)
    check("list child names do not count",
          same_type(pa.list_(pa.field("element", pa.int8(), nullable=False)), parse_type("list<int8>")))
    check("map child names do not count",
          same_type(pa.map_(pa.field("k", pa.utf8(), nullable=False), pa.field("v", pa.int8())),
                    parse_type("map<utf8, int8>")))
    check("struct field names count", not same_type(parse_type("struct<a: int8>"), parse_type("struct<b: int8>")))
    check("large_list is not list", not same_type(pa.large_list(pa.int8()), parse_type("list<int8>")))
    check("timestamp with a time zone is not timestamp", not same_type(pa.timestamp("ms", "UTC"),
                                                                        parse_type("timestamp[ms]")))

    # A hand-built savepoint, then corrupted copies of it.
    with tempfile.TemporaryDirectory(prefix="rewind-interop-") as tmp:
        def case(name, mutate, expect):
            root = os.path.join(tmp, name)
            m = build_tiny_savepoint(root)
            if mutate:
                mutate(root, m)
            res = check_savepoint(root)
            text = "\n".join(res.problems)
            if expect is None:
                check(f"savepoint {name} passes", not res.problems, text)
            else:
                check(f"savepoint {name} fails with '{expect}'",
                      any(expect in p for p in res.problems), text or "no problem found")
            return res

        res = case("good", None, None)

        check("good savepoint counts", (res.shards, res.rows) == (1, 10), f"{res.shards} shards, {res.rows} rows")

        def shard_path(root):
            return os.path.join(root, "state", "count-0.parquet")

        def flip_byte(root, m):
            p = shard_path(root)
            data = bytearray(open(p, "rb").read())
            data[len(data) // 2] ^= 0x01
            open(p, "wb").write(bytes(data))

        def wrong_rows(root, m):
            m["operators"][0]["states"][0]["shards"][0]["rows"] = 11
            write_manifest(root, m)

        def rewrite(root, m, table, kv=None):
            p = shard_path(root)
            write_shard(p, table, kv)
            st = m["operators"][0]["states"][0]
            st["shards"][0] = shard_entry(root, st["shards"][0]["path"], table.num_rows, hash_range=(0, U64_MAX))
            write_manifest(root, m)

        def table_of(root):
            return pq.read_table(shard_path(root)).replace_schema_metadata(None)

        def wrong_key_hash(root, m):
            t = table_of(root)
            hs = t.column("key_hash").to_pylist()
            hs[3] ^= 1
            rewrite(root, m, t.set_column(0, "key_hash", pa.array(hs, pa.uint64())))

        # Lean keyed shards (format 1.1): the same rows without key_hash, ranges in the footer.
        def lean(ranges=None, listed=True):
            def mutate(root, m):
                t = table_of(root).drop_columns(["key_hash"])
                hs = key_hashes(t.column("key").combine_chunks())
                text = ranges if ranges is not None else f"{min(hs):016x}-{max(hs):016x}"
                meta = {"rewind.writer": "self-test", "rewind.format_version": "1.1"}
                if text != "absent":
                    meta[HASH_RANGES_KEY.decode()] = text
                m["version"] = "1.1"
                m["reader_features"] = [LEAN_KEYED_SHARDS] if listed else []
                rewrite(root, m, t, meta)
            return mutate

        case("lean", lean(), None)
        case("lean-without-feature", lean(listed=False), "columns are ['key', 'value']")
        case("lean-ranges-missing", lean(ranges="absent"), "no rewind.key_hash_ranges")
        case("lean-range-wrong", lean(ranges="0000000000000000-0000000000000001"), "recorded range")
        case("lean-range-count", lean(ranges="empty,empty"), "2 entries for 1 row groups")

        def unsorted(root, m):
            rewrite(root, m, table_of(root).take(pa.array(list(range(9, -1, -1)))))

        def narrow_range(root, m):
            sh = m["operators"][0]["states"][0]["shards"]
            sh[0]["hash_range"] = {"start": "0000000000000000", "end": "7fffffffffffffff"}
            t = table_of(root)
            first = t.slice(0, 0)
            p2 = os.path.join(root, "state", "count-1.parquet")
            write_shard(p2, first)
            sh.append(shard_entry(root, "state/count-1.parquet", 0, hash_range=(1 << 63, U64_MAX)))
            write_manifest(root, m)

        def wrong_type(root, m):
            m["operators"][0]["states"][0]["value_type"] = "utf8"
            write_manifest(root, m)

        def wrong_columns(root, m):
            rewrite(root, m, table_of(root).rename_columns(["key_hash", "key", "val"]))

        def no_metadata(root, m):
            rewrite(root, m, table_of(root), kv={})

        def coverage_gap(root, m):
            m["operators"][0]["states"][0]["shards"][0]["hash_range"]["start"] = "0000000000000001"
            write_manifest(root, m)

        def path_escape(root, m):
            m["operators"][0]["states"][0]["shards"][0]["path"] = "../outside.parquet"
            write_manifest(root, m)

        def stray_file(root, m):
            open(os.path.join(root, "state", "stray.parquet"), "wb").write(b"x")

        def missing_shard(root, m):
            os.remove(shard_path(root))

        def truncated(root, m):
            p = shard_path(root)
            data = open(p, "rb").read()
            open(p, "wb").write(data[:300])

        def not_parquet(root, m):
            p = shard_path(root)
            open(p, "wb").write(b"this is not parquet\n")
            st = m["operators"][0]["states"][0]
            st["shards"][0] = shard_entry(root, st["shards"][0]["path"], 10, hash_range=(0, U64_MAX))
            write_manifest(root, m)

        def too_new(root, m):
            m["version"] = "2.0"
            write_manifest(root, m)

        case("flipped-byte", flip_byte, "CRC-32C is")
        case("wrong-rows", wrong_rows, "10 rows, the manifest says 11")
        case("wrong-key-hash", wrong_key_hash, "stored key_hash")
        case("unsorted", unsorted, "not sorted by key hash")
        case("hash-outside-range", narrow_range, "outside the shard's hash_range")
        case("wrong-value-type", wrong_type, "column 'value' is uint64, the manifest says utf8")
        case("wrong-column-names", wrong_columns, "columns are ['key_hash', 'key', 'val']")
        case("no-rewind-metadata", no_metadata, "lacks rewind.writer, rewind.format_version")
        case("coverage-gap", coverage_gap, "no shard covers key hashes 0000000000000000..=0000000000000000")
        case("path-escape", path_escape, "path segment escapes the savepoint root")
        case("stray-file", stray_file, "file is not listed in the manifest")
        case("missing-shard", missing_shard, "shard file is missing")
        case("truncated-shard", truncated, "bytes, the manifest says")
        case("not-parquet", not_parquet, "not a readable Parquet file")
        case("too-new-major", too_new, "newer than this checker supports")

        # Discovery: a folder of savepoints, and Parquet files with no manifest.
        top = os.path.join(tmp, "tree")
        build_tiny_savepoint(os.path.join(top, "a", "savepoint"))
        build_tiny_savepoint(os.path.join(top, "b", "c", "savepoint"))
        inc = os.path.join(top, "incomplete", "savepoint")
        build_tiny_savepoint(inc)
        os.remove(os.path.join(inc, MANIFEST_FILE))
        roots, orphans = discover(top)
        check("discovery finds nested roots", sorted(os.path.relpath(r, top) for r in roots)
              == ["a/savepoint", "b/c/savepoint"], repr(roots))
        check("discovery reports Parquet files without a manifest",
              [os.path.relpath(o, top) for o in orphans] == ["incomplete"], repr(orphans))

    print(f"self-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="*", metavar="DIR", help="savepoint root, or a folder of savepoints")
    ap.add_argument("--self-test", action="store_true", help="test the checker itself and exit")
    ap.add_argument("--schema", default=DEFAULT_SCHEMA,
                    help="manifest JSON Schema, used when the file exists (default: %(default)s)")
    args = ap.parse_args(argv)
    if args.self_test:
        if args.dirs:
            ap.error("--self-test takes no DIR")
        return self_test()
    if not args.dirs:
        ap.error("give at least one DIR (or --self-test)")
    return run_check(args.dirs, args.schema)


if __name__ == "__main__":
    sys.exit(main())
