"""Reads through the package equal what the `rewind` command shows of the same state."""

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

import rewind
from support import comparable, run, s3_bucket, state_rows

REPO = Path(__file__).resolve().parents[3]
GOLDEN = sorted(
    p for v in ("v1", "v1-edge", "v1.1") for p in (REPO / "fixtures" / v).iterdir() if p.is_dir()
)
FLINK = REPO / "fixtures/flink/java-hashmap-canonical-n100000/savepoint-d4c30c-92ca55030761"


def copy(case, tmp_path):
    """A temporary copy of a fixture folder (tests never open the fixture itself)."""
    return Path(shutil.copytree(case, tmp_path / case.name))


def test_every_golden_fixture_exists():
    assert len(GOLDEN) == 13, GOLDEN


@pytest.mark.parametrize("case", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_state_equals_the_cli(case, tmp_path):
    sp_path = copy(case, tmp_path) / "savepoint"
    sp = rewind.open(str(sp_path))
    assert sp.states, case
    for uid, state in sp.states:
        table = sp.read(uid, state)
        assert isinstance(table, pa.Table)
        expected = state_rows(sp_path, uid, state, table.schema)
        assert comparable(table.to_pylist()) == comparable(expected), f"{uid}/{state}"


def test_read_with_hash_and_keys_equals_the_cli(tmp_path):
    sp_path = copy(REPO / "fixtures/v1/two-operators", tmp_path) / "savepoint"
    sp = rewind.open(str(sp_path))
    keys = [{"region": "eu", "customer": 9}, {"region": "ap", "customer": 11}]
    table = sp.read("totals", "total", keys=keys, with_hash=True)
    assert table.schema.names[0] == "key_hash"
    expected = state_rows(
        sp_path, "totals", "total", table.schema, "--with-hash",
        "--key", '{"region":"eu","customer":9}', "--key", '{"region":"ap","customer":11}',
    )
    assert table.num_rows == 2
    assert table.to_pylist() == expected


def test_metadata_of_a_savepoint(tmp_path):
    sp_path = copy(REPO / "fixtures/v1/keyed-primitive", tmp_path) / "savepoint"
    sp = rewind.open(str(sp_path))
    assert sp.url == str(sp_path)
    assert sp.operators == ["counter"]
    assert sp.states == [("counter", "count"), ("counter", "label")]
    assert sp.manifest["version"] == "1.0"
    assert sp.manifest["operators"][0]["states"][0]["key_type"] == "int64"
    assert sp.lineage == sp.manifest["lineage"] == {"operation": "bootstrap"}
    assert repr(sp) == f"<rewind.Savepoint {sp_path}: format 1.0 savepoint, 1 operator, 2 states>"


def test_flink_savepoint_reads_through_the_importer(tmp_path):
    path = copy(FLINK, tmp_path)
    sp = rewind.open(str(path))
    assert repr(sp) == (
        f"<rewind.Savepoint {path} (Flink savepoint, read through the importer): "
        "format 1.1 savepoint, 5 operators, 3 states>"
    )
    assert sp.states == [
        ("counter", "count"),
        ("counter", "timers-user-timers"),
        ("idle-source", "SourceReaderState"),
    ]
    assert sp.lineage["operation"] == "import"
    table = sp.read("counter", "count").sort_by("key")
    assert table.column("key").to_pylist() == list(range(100_000))
    assert set(table.column("value").to_pylist()) == {10}


def test_batches_in_small_batches_equal_the_whole_read(tmp_path):
    sp = rewind.open(str(copy(REPO / "fixtures/v1-edge/key-types", tmp_path) / "savepoint"))
    whole = sp.read("keys", "by_uint64")
    reader = sp.batches("keys", "by_uint64", batch_size=3)
    assert isinstance(reader, pa.RecordBatchReader)
    assert reader.schema == whole.schema
    batches = list(reader)
    assert len(batches) > 2 and all(b.num_rows <= 3 for b in batches)
    assert pa.Table.from_batches(batches, whole.schema).equals(whole)


def test_an_empty_read_has_the_state_columns(tmp_path):
    sp = rewind.open(str(copy(REPO / "fixtures/v1/keyed-primitive", tmp_path) / "savepoint"))
    table = sp.read("counter", "count", keys=[123456789])
    assert table.num_rows == 0
    assert table.schema.names == ["key", "value"]
    assert table.schema.field("value").type == pa.uint64()


def test_read_from_s3(tmp_path):
    bucket = s3_bucket()
    local = copy(REPO / "fixtures/v1/struct-list-map", tmp_path) / "savepoint"
    remote = f"{bucket}/python-{os.getpid()}-{tmp_path.name}"
    code, _, err = run("compact", str(local), remote)
    assert code == 0, err
    sp = rewind.open(remote)
    assert sp.states == rewind.open(str(local)).states
    for uid, state in sp.states:
        table = sp.read(uid, state)
        assert table.equals(rewind.open(str(local)).read(uid, state)), f"{uid}/{state}"
        assert table.to_pylist() == state_rows(remote, uid, state, table.schema)
