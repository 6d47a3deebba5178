import subprocess
import sys

import pytest

from mnas.model.cost import compute_stats
from mnas.model.summary import describe
from mnas.search_space import get_preset


def test_describe_has_one_row_per_layer_of_the_stats_and_their_totals():
    spec = get_preset("mnasnet-a1")
    stats = compute_stats(spec)
    lines = describe(spec).splitlines()
    assert lines[1] == "blocks: " + ", ".join(spec.block_strings)
    rows = [line.split() for line in lines[4:-2]]
    assert [row[0] for row in rows] == [layer.name for layer in stats.layers]
    assert [(row[-2], row[-1]) for row in rows] == [
        (f"{layer.params:,}", f"{layer.macs:,}") for layer in stats.layers
    ]
    assert lines[-2].split() == ["total", "3,920,526", f"{stats.macs:,}"]
    assert lines[-1] == "parameters: 3.921M   multiply-adds: 312.2M"


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "mnas.bin.describe", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_binary_prints_scaled_model():
    result = _run("--arch=mnasnet-a1", "--width_multiplier=1.4")
    assert result.returncode == 0, result.stderr
    assert "parameters: 6.152M" in result.stdout
    assert "width x1.4" in result.stdout


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--arch=nope", "unknown preset 'nope'; known presets: efficientnet-b0"),
        ("--arch=r1_k3_s11_e1_i32_oX", "malformed output filters (o) field 'oX'"),
        ("--resolution=2", "--resolution must be >= 8, got 2"),
        ("--arch=/nonexistent/arch.json", "cannot read architecture file"),
    ],
)
def test_binary_bad_input(flag, message):
    result = _run(flag)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
