"""Binaries are thin: they import flags and the library's package roots only,
and none of them loads TensorFlow before it has work for it."""

import ast
import pathlib
import subprocess
import sys
import textwrap

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


def test_a_search_reads_and_checks_its_whole_config_without_tensorflow(tmp_path):
    """mnas-search refuses a bad flag or a held work directory in well under
    a second: every config it builds, and the work directory's check, live
    apart from the code that needs TensorFlow (a refusal used to wait ~10 s
    for the import)."""
    code = textwrap.dedent(
        f"""
        import json, os, sys
        from absl import flags
        from mnas.flags.latency import define_latency_flags, latency_config_from_flags
        from mnas.flags.search import define_search_flags, search_config_from_flags
        from mnas.search import SearchConfigError, check_search_work_dir
        from mnas.search.config import SearchConfig, canonical_config_dict

        values = flags.FlagValues()
        define_search_flags(values)
        define_latency_flags(values)
        values(["mnas-search", "--work_dir={tmp_path}"])
        config = search_config_from_flags(values, latency_config_from_flags(values), None)
        assert SearchConfig.from_dict(config.to_dict()) == config
        canonical_config_dict({{"work_dir": "w", "latency_backend": "host"}})
        check_search_work_dir(config, resume=False)  # empty: admitted
        with open(os.path.join(config.work_dir, "config.json"), "w") as handle:
            json.dump(config.to_dict(), handle)
        try:
            check_search_work_dir(config, resume=False)
        except SearchConfigError:
            pass
        else:
            raise AssertionError("a held work directory was admitted")
        print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
