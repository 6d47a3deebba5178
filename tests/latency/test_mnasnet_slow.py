"""Full-size MnasNet-A1 checks from issue 3 (slow: minutes on 2 cores).

Run with ``pytest -m slow tests/latency/test_mnasnet_slow.py``.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pytest

from mnas.latency.backends.host import HostBackend
from mnas.latency.backends.litert_benchmark import LiteRTBenchmarkBackend
from mnas.latency.export import export_tflite, tflite_op_names, training_ops

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def a1_files(tmp_path_factory):
    from mnas.model.builder import build_model
    from mnas.search_space.presets import get_preset

    model = build_model(get_preset("mnasnet-a1"))
    folder = tmp_path_factory.mktemp("a1")
    paths = {}
    for name, kwargs in {
        "float": {"quantization": "none"},
        "int8": {"quantization": "int8", "num_calibration_samples": 10},
    }.items():
        path = folder / f"mnasnet-a1 {name}.tflite"
        path.write_bytes(export_tflite(model, **kwargs))
        paths[name] = str(path)
    return paths


def _pinned_cpu() -> list[int]:
    return [max(os.sched_getaffinity(0))]


def test_a1_float_graph_is_inference_only(a1_files):
    ops = tflite_op_names(Path(a1_files["float"]).read_bytes())
    assert training_ops(ops) == []
    assert ops.count("DEPTHWISE_CONV_2D") == 16  # one per layer: 1+2+3+4+2+3+1
    assert ops.count("LOGISTIC") == 8  # SE gates of blocks 3, 5, 6: 3+2+3


def test_a1_int8_is_about_a_quarter_and_runs(a1_files):
    ratio = os.path.getsize(a1_files["int8"]) / os.path.getsize(a1_files["float"])
    assert 0.2 < ratio < 0.32
    result = HostBackend(num_runs=5, min_secs=0, cpus=_pinned_cpu()).measure(
        a1_files["int8"]
    )
    assert result.runs == 5 and result.median_ms > 0


def test_host_agrees_with_litert_benchmark_within_10_percent(a1_files):
    cpus = _pinned_cpu()
    host = HostBackend(num_runs=50, min_secs=1.0, cpus=cpus)
    cli = LiteRTBenchmarkBackend(num_runs=50, warmup_runs=5, cpus=cpus)
    host_medians, cli_medians = [], []
    for _ in range(3):  # interleaved rounds: drift hits both sides alike
        host_medians.append(host.measure(a1_files["float"]).median_ms)
        cli_medians.append(cli.measure(a1_files["float"]).median_ms)
    host_ms, cli_ms = statistics.median(host_medians), statistics.median(cli_medians)
    assert abs(host_ms - cli_ms) / cli_ms <= 0.10, (host_medians, cli_medians)


def test_repeated_host_medians_vary_at_most_5_percent(a1_files):
    load = os.getloadavg()[0]
    if load > 0.5 * os.cpu_count():
        pytest.skip(f"machine is busy (1-min load {load:.1f}); CV needs a quiet one")
    host = HostBackend(num_runs=50, min_secs=1.0, cpus=_pinned_cpu())
    medians = [host.measure(a1_files["float"]).median_ms for _ in range(10)]
    cv = statistics.stdev(medians) / statistics.mean(medians)
    assert cv <= 0.05, medians
