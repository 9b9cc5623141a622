"""The installed package's stubs describe exactly what the native module has."""

import ast
import inspect
from pathlib import Path

import rewind


def savepoint_stub():
    return next(n for n in stub().body if isinstance(n, ast.ClassDef) and n.name == "Savepoint")


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
    exported = (n for n in dir(rewind) if not inspect.ismodule(getattr(rewind, n)))
    assert public(exported) == sorted(rewind.__all__)


def test_stub_members_of_savepoint_equal_the_class():
    members = [n.name for n in savepoint_stub().body if isinstance(n, ast.FunctionDef)]
    assert public(members) == public(dir(rewind.Savepoint))


def test_stub_parameters_equal_the_native_signatures():
    methods = {n.name: n for n in savepoint_stub().body if isinstance(n, ast.FunctionDef)}
    for method in ("read", "batches"):
        stubbed = [a.arg for a in methods[method].args.args]
        native = list(inspect.signature(getattr(rewind.Savepoint, method)).parameters)
        assert stubbed == native, method
