"""mnas-scale, run as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mnas.search_space import get_preset, get_search_space
from mnas.search_space.scaling import scale

TINY_ARCH = "r1_k3_s11_e1_i32_o16,r1_k3_s22_e6_i16_o24"


def _run(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "mnas.bin.scale", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _table_rows(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("phi "))
    rows = []
    for line in lines[start + 2 :]:
        if not line[:1].isdigit():
            break
        rows.append(line.split())
    return rows


def test_family_table_without_latency():
    result = _run("--arch=mnasnet-a1", "--phi=0,1,2,3", "--nomeasure_latency")
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout)
    assert [row[0] for row in rows] == ["0", "1", "2", "3"]
    assert [row[1] for row in rows] == [
        "mnasnet-a1",
        "mnasnet-a1-phi1",
        "mnasnet-a1-phi2",
        "mnasnet-a1-phi3",
    ]
    assert [int(row[2]) for row in rows] == [224, 256, 296, 344]
    params = [int(row[6].replace(",", "")) for row in rows]
    assert params == sorted(params) and len(set(params)) == 4
    assert rows[0][8] == "-"
    assert "alpha*beta^2*gamma^2 = 1.9203" in result.stdout


def test_family_exports_and_times_each_member(tmp_path):
    result = _run(
        f"--arch={TINY_ARCH}",
        "--resolution=32",
        "--num_classes=10",
        "--phi=0,1",
        "--num_runs=3",
        "--no_latency_cache",
        f"--export_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout)
    assert [int(row[2]) for row in rows] == [32, 40]
    assert all(float(row[8]) > 0 for row in rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "custom-phi1.tflite",
        "custom.tflite",
    ]


def test_family_from_best_json(tmp_path):
    spec = scale(get_preset("mnasnet-small"), 1)
    path = tmp_path / "best.json"
    path.write_text(
        json.dumps(
            {
                "search_space": get_search_space().identity(),
                "best": [{"rank": 1, "arch": spec.to_dict()}],
            }
        )
    )
    result = _run(f"--arch={path}", "--phi=0,1", "--nomeasure_latency")
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout)
    assert [row[1] for row in rows] == ["mnasnet-small-phi1", "mnasnet-small-phi1-phi1"]


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["--arch=mnasnet-a1", "--phi=-1"], 1, "--phi values must be in [0, 10], got '-1'"),
        (["--arch=mnasnet-a1", "--phi=x"], 1, "--phi values must be numbers, got 'x'"),
        (["--arch=mnasnet-a1", "--phi=1", "--depth_coefficient=2",
          "--width_coefficient=1.2", "--resolution_coefficient=1.2"], 1,
         "alpha * beta^2 * gamma^2 = 4.1472 (alpha=2, beta=1.2, gamma=1.2) is off "
         "from 2 by more than the tolerance 0.1"),
        (["--arch=mnasnet-a1", "--phi=1", "--resolution_coefficient=inf"], 1,
         "--resolution_coefficient must be a finite number, got inf"),
        (["--phi=1"], 1,
         "--arch is required (a preset, block strings or an arch .json file)"),
        (["--arch=mnasnet-a1", "--grid_search", "--proxy_epochs=0"], 1,
         "--proxy_epochs must be >= 1, got 0"),
        (["--arch=mnasnet-a1", "--grid_search", "--target_ms=-3"], 1,
         "target latency must be > 0 ms, got -3.0"),
        (["--arch=mnasnet-a1", "extra"], 2, "unexpected arguments: extra"),
        (["--arch=mnasnet-a1", "--alpha=1.2"], 2,
         "--alpha was renamed: use --depth_coefficient"),
        (["--arch=mnasnet-a1", "--gamma=1.2"], 2,
         "--gamma was renamed: use --resolution_coefficient"),
        (["--arch=mnasnet-a1", "--grid_search", "--epochs=1"], 2,
         "--epochs was renamed: use --proxy_epochs"),
        (["--arch=mnasnet-a1", "--nolatency"], 2,
         "--nolatency was renamed: use --nomeasure_latency"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(cli, args, status, message):
    line = cli.refusal(*args, "--nomeasure_latency", status=status)
    assert line == f"mnas-scale: {message}"


@pytest.mark.slow
def test_bad_triples_are_one_line(cli):
    """Triples are parsed by the grid-search library, which loads TensorFlow."""
    for triples, message in (
        ("1.2:1.1", "a triple is written alpha:beta:gamma (e.g. 1.2:1.1:1.15), "
         "got '1.2:1.1'"),
        ("1.4:1.4:1.4", "alpha * beta^2 * gamma^2 = 5.3782"),
    ):  # fmt: skip
        line = cli.refusal("--arch=mnasnet-a1", "--grid_search", f"--triples={triples}")
        assert line.startswith(f"mnas-scale: {message}")


def test_arch_file_from_another_search_space_version(tmp_path):
    path = tmp_path / "best.json"
    path.write_text(
        json.dumps(
            {
                "search_space": "mnasnet/v0/000000000000",
                "best": [{"arch": get_preset("mnasnet-a1").to_dict()}],
            }
        )
    )
    result = _run(f"--arch={path}", "--nomeasure_latency")
    assert result.returncode == 1
    assert "comes from search space 'mnasnet/v0/000000000000'" in result.stderr
    data = get_preset("mnasnet-a1").to_dict()
    data["format_version"] = 7
    path.write_text(json.dumps(data))
    result = _run(f"--arch={path}", "--nomeasure_latency")
    assert result.returncode == 1
    assert "architecture format version 7 is not supported" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_grid_search_binary_with_a_tiny_budget(tmp_path):
    result = _run(
        "--arch=mnasnet-small",
        "--grid_search",
        "--triples=1.2:1.1:1.15,1:1.05:1.35",
        "--proxy_resolution=16",
        "--proxy_epochs=1",
        "--max_train_examples=128",
        "--target_ms=5",
        "--num_runs=3",
        "--no_latency_cache",
        f"--work_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    assert "chosen: alpha=" in result.stdout
    data = json.loads((tmp_path / "scaling_search.json").read_text())
    assert data["score"] == "reward"
    assert len(data["results"]) == 2
    assert all(r["latency_ms"] > 0 for r in data["results"])
    best = data["results"][0]
    assert data["chosen"] == {
        "alpha": best["alpha"],
        "beta": best["beta"],
        "gamma": best["gamma"],
    }
