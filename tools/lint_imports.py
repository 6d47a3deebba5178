"""Checks the layer contracts of ``pyproject.toml`` with import-linter.

import-linter reads a package from disk, but mnas is installed from several
top-level folders mapped into one import root (``setup.py``'s
``package_dir``), so no folder on disk looks like the ``mnas`` package. This
script copies the sources into the installed layout in a temporary folder
and runs ``lint-imports`` there. Usage: ``python tools/lint_imports.py
[--inject MODULE:IMPORT]`` (``--inject`` appends an import to a module of the
copy, to show that a contract catches a violation).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Import root -> folder, as in setup.py.
LAYOUT = {
    "mnas": "mnas",
    "mnas/search_space": "search_space",
    "mnas/controller": "controller",
    "mnas/latency": "latency",
    "mnas/flags": "flags",
}


def assemble(target: str) -> None:
    """Copies every package folder into ``target`` in its installed place."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for installed, folder in LAYOUT.items():
        shutil.copytree(
            os.path.join(ROOT, folder),
            os.path.join(target, installed),
            ignore=ignore,
            dirs_exist_ok=True,
        )
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), target)


def inject(target: str, spec: str) -> None:
    module, _, statement = spec.partition(":")
    path = os.path.join(target, *module.split(".")) + ".py"
    if not os.path.exists(path):
        path = os.path.join(target, *module.split("."), "__init__.py")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"\n{statement}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--inject",
        action="append",
        default=[],
        help="MODULE:STATEMENT appended to the copy (e.g. "
        "'mnas.search_space.space:import mnas.search')",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mnas-lint-") as target:
        assemble(target)
        for spec in args.inject:
            inject(target, spec)
        env = dict(os.environ, PYTHONPATH=target)
        return subprocess.call(
            [
                sys.executable,
                "-c",
                "import sys; from importlinter.cli import lint_imports_command; "
                "sys.exit(lint_imports_command())",
                os.path.join(target, "pyproject.toml"),
                "--no-cache",
                "--no-logo",
            ],
            cwd=target,
            env=env,
        )


if __name__ == "__main__":
    sys.exit(main())
