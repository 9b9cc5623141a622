"""The installed package's stubs describe exactly what the native module has."""

import ast
import inspect
from pathlib import Path

import rewind


def stub():
    path = Path(rewind.__file__).with_suffix(".pyi")
    assert path.exists(), "the wheel ships no __init__.pyi"
    assert (path.parent / "py.typed").exists(), "the wheel ships no py.typed"
    return ast.parse(path.read_text())


def public(names):
    return sorted(n for n in names if not n.startswith("_"))


def test_stub_names_equal_the_module():
    tree = stub()
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert public(defined) == sorted(rewind.__all__)
    assert public(n for n in dir(rewind) if not inspect.ismodule(getattr(rewind, n))) == sorted(rewind.__all__)


def test_stub_members_of_savepoint_equal_the_class():
    savepoint = next(n for n in stub().body if isinstance(n, ast.ClassDef) and n.name == "Savepoint")
    members = [n.name for n in savepoint.body if isinstance(n, ast.FunctionDef)]
    assert public(members) == public(dir(rewind.Savepoint))


def test_stub_parameters_equal_the_native_signatures():
    savepoint = next(n for n in stub().body if isinstance(n, ast.ClassDef) and n.name == "Savepoint")
    for method in ("read", "batches"):
        node = next(n for n in savepoint.body if isinstance(n, ast.FunctionDef) and n.name == method)
        stubbed = [a.arg for a in node.args.args]
        native = list(inspect.signature(getattr(rewind.Savepoint, method)).parameters)
        assert stubbed == native, method
