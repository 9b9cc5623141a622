"""What the tests share: the `rewind` binary the test script built, its JSON rows read
back as the Python values pyarrow gives (so a table read through the package compares
with ==), and the S3 bucket of the test script's server."""

import datetime
import decimal
import json
import math
import os
import subprocess

import pyarrow as pa
import pytest


def binary():
    path = os.environ.get("REWIND_BIN")
    if not path:
        raise RuntimeError("REWIND_BIN is not set: scripts/test.sh names the built rewind binary")
    return path


def run(*args):
    """Runs `rewind ARGS...` and returns (exit code, stdout, stderr)."""
    done = subprocess.run([binary(), *args], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def state_rows(savepoint, uid, state, schema, *extra):
    """`rewind state --format json` of a state, as a list of row dicts typed by `schema`."""
    code, out, err = run("state", str(savepoint), uid, state, "--format", "json", *extra)
    assert code == 0, err
    rows = []
    for line in out.splitlines():
        pairs = json.loads(line, object_pairs_hook=list)
        row = dict(pairs)
        assert list(row) == schema.names, line
        rows.append({f.name: from_json(row[f.name], f.type) for f in schema})
    return rows


def error_line(*args):
    """The one-line message of a failing `rewind` command, without its prefix."""
    code, _, err = run(*args)
    assert code == 2, err
    prefix = "rewind: error: "
    assert err.startswith(prefix) and err.endswith("\n") and err.count("\n") == 1, err
    return err[len(prefix) : -1]


def from_json(value, t):
    """A value as arrow-json writes it (objects as lists of pairs), as pyarrow's to_pylist
    gives it."""
    if value is None:
        return None
    if pa.types.is_floating(t):
        return float(value)  # "NaN", "Infinity" and "-Infinity" parse too
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return bytes.fromhex(value)
    if pa.types.is_timestamp(t):
        return datetime.datetime.fromisoformat(value)
    if pa.types.is_date(t):
        return datetime.date.fromisoformat(value)
    if pa.types.is_decimal(t):
        return decimal.Decimal(value)
    if pa.types.is_struct(t):
        fields = dict(value)
        return {f.name: from_json(fields[f.name], f.type) for f in t}
    if pa.types.is_map(t):
        return [(map_key(k, t.key_type), from_json(v, t.item_type)) for k, v in value]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [from_json(v, t.value_type) for v in value]
    return value


def map_key(text, t):
    """A JSON object member name as a map key of type `t`."""
    return int(text) if pa.types.is_integer(t) else from_json(text, t)


def comparable(value):
    """`value` with NaN made equal to itself (a float NaN never compares equal)."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(comparable(v) for v in value)
    return value


def s3_bucket():
    """The bucket REWIND_TEST_S3_URL names (scripts/test.sh starts a server for it)."""
    url = os.environ.get("REWIND_TEST_S3_URL")
    if url is None and os.environ.get("REWIND_REQUIRE_S3"):
        pytest.fail("REWIND_REQUIRE_S3 is set but REWIND_TEST_S3_URL is not")
    if url is None:
        pytest.skip("REWIND_TEST_S3_URL unset; scripts/test.sh sets it")
    return url
