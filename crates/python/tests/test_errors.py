"""Errors are rewind exceptions by what the caller can do, with the CLI's one-line message."""

import shutil
from pathlib import Path

import pytest

import rewind
from support import error_line, s3_bucket

REPO = Path(__file__).resolve().parents[3]
CORRUPT = REPO / "fixtures/corrupt"


def golden(case, tmp_path):
    copied = shutil.copytree(REPO / "fixtures/v1" / case / "savepoint", tmp_path / case)
    return rewind.open(str(copied))


def corrupt(case, tmp_path):
    return str(shutil.copytree(CORRUPT / case / "savepoint", tmp_path / case))


def test_the_classes_form_one_family():
    for cls in (rewind.NotFoundError, rewind.CorruptError, rewind.UnsupportedError,
                rewind.InvalidInputError, rewind.StorageError):
        assert issubclass(cls, rewind.SavepointError)
        assert cls.__module__ == "rewind"
    assert issubclass(rewind.SavepointError, Exception)


def test_a_missing_savepoint(tmp_path):
    missing = str(tmp_path / "nothing-here")
    with pytest.raises(rewind.NotFoundError) as e:
        rewind.open(missing)
    assert str(e.value) == f"{missing}: not a savepoint (no _manifest.json and no files)"
    assert str(e.value) == error_line("inspect", missing)


@pytest.mark.parametrize(
    ("case", "cls"),
    [
        ("too-new-major", rewind.UnsupportedError),
        ("unknown-reader-feature", rewind.UnsupportedError),
        ("invalid-json", rewind.CorruptError),
        ("not-a-savepoint", rewind.CorruptError),
        ("path-escape", rewind.CorruptError),
        ("incomplete", rewind.NotFoundError),
    ],
)
def test_a_savepoint_that_does_not_open(case, cls, tmp_path):
    path = corrupt(case, tmp_path)
    with pytest.raises(cls) as e:
        rewind.open(path)
    assert type(e.value) is cls
    assert str(e.value) == error_line("inspect", path)


def test_too_new_names_the_version(tmp_path):
    path = corrupt("too-new-major", tmp_path)
    with pytest.raises(rewind.UnsupportedError) as e:
        rewind.open(path)
    assert str(e.value) == (
        f"{path}/_manifest.json: savepoint format version 2.0 is newer than this build "
        "supports (up to 1.1); upgrade rewind"
    )


@pytest.mark.parametrize(
    "case", ["truncated-shard", "missing-shard", "not-parquet", "schema-mismatch"]
)
def test_a_corrupt_shard_fails_its_read(case, tmp_path):
    sp = rewind.open(corrupt(case, tmp_path))
    failed = []
    for uid, state in sp.states:
        try:
            sp.read(uid, state)
        except rewind.CorruptError as e:
            assert type(e) is rewind.CorruptError
            assert str(e) == error_line("state", sp.url, uid, state, "--format", "json")
            failed.append(state)
    assert failed == ["count"]


def test_a_corrupt_shard_fails_a_stream_with_the_same_error(tmp_path):
    sp = rewind.open(corrupt("truncated-shard", tmp_path))
    with pytest.raises(rewind.CorruptError) as whole:
        sp.read("counter", "count")
    with pytest.raises(rewind.CorruptError) as streamed:
        sp.batches("counter", "count", batch_size=1).read_all()
    assert str(streamed.value) == str(whole.value)
    assert "truncated: 300 bytes" in str(whole.value)


def test_unknown_names(tmp_path):
    sp = golden("keyed-primitive", tmp_path)
    with pytest.raises(rewind.NotFoundError) as e:
        sp.read("nope", "count")
    assert str(e.value) == 'unknown operator "nope"; the savepoint has: counter'
    assert str(e.value) == error_line("state", sp.url, "nope", "count")
    with pytest.raises(rewind.NotFoundError) as e:
        sp.read("counter", "nope")
    assert str(e.value) == 'operator "counter" has no state "nope"; it has: count, label'


def test_invalid_input(tmp_path):
    sp = golden("operator-state-sources", tmp_path)
    with pytest.raises(rewind.InvalidInputError) as e:
        sp.read("source", "pending_files", keys=[1])
    assert str(e.value) == 'state "pending_files" is operator state and has no keys'
    assert str(e.value) == error_line("state", sp.url, "source", "pending_files", "--key", "1")
    keyed = golden("keyed-primitive", tmp_path)
    with pytest.raises(rewind.InvalidInputError) as e:
        keyed.read("counter", "count", keys=["abc"])
    assert str(e.value).startswith("keys must be keys of type int64: ")
    with pytest.raises(rewind.InvalidInputError) as e:
        keyed.read("counter", "label", keys="abc")
    assert str(e.value) == (
        "keys must be a list of keys (or a pyarrow array), not a single str or bytes"
    )
    with pytest.raises(rewind.InvalidInputError) as e:
        keyed.batches("counter", "count", batch_size=0)
    assert str(e.value) == "batch_size must be at least 1"
    with pytest.raises(rewind.InvalidInputError) as e:
        rewind.open("s3://")
    assert str(e.value) == error_line("inspect", "s3://")


def test_a_wrong_secret_is_a_storage_error(monkeypatch):
    bucket = s3_bucket()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    url = f"{bucket}/python-wrong-secret"
    with pytest.raises(rewind.StorageError) as e:
        rewind.open(url)
    assert type(e.value) is rewind.StorageError
    assert "the secret key is wrong (signature does not match)" in str(e.value)
    assert str(e.value) == error_line("inspect", url)


@pytest.mark.parametrize("sample", ["java-rocksdb-native-n100000", "f120-hashmap"])
def test_a_flink_savepoint_the_importer_refuses(sample, tmp_path):
    copied = shutil.copytree(REPO / "fixtures/flink" / sample, tmp_path / sample)
    path = str(next(p.parent for p in Path(copied).rglob("_metadata")))
    with pytest.raises(rewind.UnsupportedError) as e:
        rewind.open(path)
    assert type(e.value) is rewind.UnsupportedError
    assert str(e.value) == error_line("validate", path)
