import subprocess
import sys

import pytest

from mnas.model.summary import describe
from mnas.search_space import get_preset


def test_describe_table_has_every_layer_and_totals():
    text = describe(get_preset("mnasnet-a1"))
    assert "block6_layer0" in text and "classifier" in text
    assert "parameters: 3.921M   multiply-adds: 312.2M" in text
    assert "3,920,526" in text


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
