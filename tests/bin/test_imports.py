"""Binaries are thin: they import flags and the library's package roots only,
and none of them loads TensorFlow before it has work for it."""

import ast
import pathlib
import subprocess
import sys

import mnas.bin

BIN_DIR = pathlib.Path(mnas.bin.__file__).parent
BINARIES = sorted(p.stem for p in BIN_DIR.glob("*.py") if p.stem != "__init__")
PACKAGE_ROOTS = {
    "mnas.model",
    "mnas.train",
    "mnas.latency",
    "mnas.scaling",
    "mnas.search_space",
    "mnas.io",
    "mnas.search",
    "mnas.dnas",
}


def _project_imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "mnas" or name.startswith("mnas.")}


def test_binaries_import_flags_and_package_roots_only():
    assert BINARIES == [
        "describe", "dnas", "eval", "export", "latency", "scale", "search", "train",
    ]  # fmt: skip
    strays = {}
    for name in BINARIES:
        imports = _project_imports(BIN_DIR / f"{name}.py")
        bad = {
            module
            for module in imports
            if not module.startswith("mnas.flags.") and module not in PACKAGE_ROOTS
        }
        if bad:
            strays[name] = sorted(bad)
    assert strays == {}


def test_no_binary_loads_tensorflow_to_read_its_flags():
    modules = ", ".join(f"mnas.bin.{name}" for name in BINARIES)
    code = (
        f"import sys, {modules}\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
