"""The layer contracts of pyproject.toml catch a violation (tools/lint_imports.py).

CI runs the contracts on the real tree; these tests show that the check can
fail: an import against the layering, added to a copy of the sources, breaks
the contract that forbids it.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT = os.path.join(ROOT, "tools", "lint_imports.py")


def _lint(*injections: str) -> subprocess.CompletedProcess:
    args = [sys.executable, LINT]
    for injection in injections:
        args += ["--inject", injection]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("injection", "contract"),
    [
        (
            "mnas.search_space.space:import mnas.search",
            "search_space is data only: it imports nothing else of the project BROKEN",
        ),
        (
            "mnas.latency.lut.predictor:import mnas.search.runner",
            "latency measures and predicts: no search, training or controller BROKEN",
        ),
    ],
)
def test_an_import_against_the_layers_breaks_its_contract(injection, contract):
    result = _lint(injection)
    assert result.returncode != 0
    assert contract in result.stdout
