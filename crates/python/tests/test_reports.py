"""The CLI's reports as Python objects equal its --json documents."""

import json
import shutil
from pathlib import Path

import pytest

import rewind
from support import error_line, run

REPO = Path(__file__).resolve().parents[3]


def cli_json(*args):
    """The --json document of a `rewind` command, without its wire-format version."""
    code, out, err = run(*args, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document.pop("json_version") == 1
    return document


@pytest.mark.parametrize("case", ["v1/struct-list-map", "v1.1/incremental-chain"])
def test_analyze_equals_the_cli(case, tmp_path):
    path = str(shutil.copytree(REPO / "fixtures" / case, tmp_path / "case") / "savepoint")
    report = rewind.analyze(path)
    assert report == cli_json("analyze", path)
    assert [s["state"] for s in report["states"]], report


def test_analyze_against_a_baseline_narrowed_to_one_state(tmp_path):
    chain = shutil.copytree(REPO / "fixtures/v1.1/incremental-chain", tmp_path / "chain")
    new, old = str(chain / "savepoint"), str(chain / "chk-0000000001")
    report = rewind.analyze(new, baseline=old, top=2, operator="counts", state="count")
    assert report == cli_json(
        "analyze", new, "--baseline", old, "--top", "2", "--operator", "counts", "--state", "count"
    )
    assert report["baseline_id"] == rewind.open(old).manifest["id"]
    assert [(s["operator"], s["state"]) for s in report["states"]] == [("counts", "count")]


def test_analyze_of_nothing_is_not_found(tmp_path):
    missing = str(tmp_path / "missing")
    with pytest.raises(rewind.NotFoundError) as e:
        rewind.analyze(missing)
    assert str(e.value) == error_line("analyze", missing)
