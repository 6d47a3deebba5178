"""litert-benchmark backend: the official CLI run as a subprocess."""

from __future__ import annotations

import json
import sys
import time

import pytest

from mnas.latency.backend import make_backend
from mnas.latency.backends.litert_benchmark import (
    LiteRTBenchmarkBackend,
    default_command,
    parse_result_json,
)
from mnas.latency.errors import LatencyError
from mnas.latency.export import export_tflite
from mnas.latency.result import BackendFingerprint
from mnas.testing.latency_models import tiny_convnet

CANNED = {
    "model": "m.tflite",
    "num_threads": 1,
    "latency": {
        "init_ms": 8.12,
        "warmup_first_ms": 0.9,
        "warmup_avg_ms": 0.5,
        "num_warmup_runs": 5,
        "avg_ms": 7.25,
        "min_ms": 6.9,
        "max_ms": 9.1,
        "median_ms": 7.1,
        "std_ms": 0.31,
        "p5_ms": 6.95,
        "p95_ms": 8.4,
        "num_runs": 50,
    },
}
FP = BackendFingerprint.create("litert-benchmark", "x86_64", "cpu", 1, "v")


def fake_tool(tmp_path, body: str) -> list[str]:
    """A Python stand-in for the CLI; ``args`` holds its parsed flags."""
    script = tmp_path / "fake_litert.py"
    script.write_text(
        "import json, sys, time\n"
        "args = dict(a[2:].split('=', 1) for a in sys.argv[1:])\n" + body
    )
    return [sys.executable, str(script)]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("litert") / "tiny model (v1).tflite"
    path.write_bytes(export_tflite(tiny_convnet(input_size=32, width=16)))
    return str(path)


def test_real_tool_measures_a_model_with_an_awkward_name(tiny_path):
    backend = LiteRTBenchmarkBackend(num_runs=7, warmup_runs=2, timeout_s=120)
    result = backend.measure(tiny_path)
    assert result.runs == 7
    assert result.min_ms <= result.median_ms <= result.max_ms
    assert result.init_ms is not None and result.init_ms > 0
    assert result.fingerprint.backend == "litert-benchmark"
    assert result.fingerprint == backend.fingerprint()


def test_parse_result_json_maps_every_field():
    result = parse_result_json(CANNED, FP)
    assert (result.median_ms, result.mean_ms, result.std_ms) == (7.1, 7.25, 0.31)
    assert (result.min_ms, result.max_ms) == (6.9, 9.1)
    assert (result.p5_ms, result.p95_ms) == (6.95, 8.4)
    assert result.runs == 50
    assert (result.init_ms, result.first_run_ms) == (8.12, 0.9)
    assert dict(result.extra) == {"warmup_avg_ms": 0.5}
    no_warmup = json.loads(json.dumps(CANNED))
    no_warmup["latency"]["num_warmup_runs"] = 0
    assert parse_result_json(no_warmup, FP).first_run_ms is None


def test_measure_passes_flags_and_reads_json(tmp_path):
    argv_log = tmp_path / "argv.json"
    body = (
        f"json.dump(sys.argv[1:], open({str(argv_log)!r}, 'w'))\n"
        f"json.dump({CANNED!r}, open(args['result_json'], 'w'))\n"
    )
    backend = LiteRTBenchmarkBackend(
        num_threads=2, warmup_runs=3, num_runs=11, command=fake_tool(tmp_path, body)
    )
    result = backend.measure("/models/a b.tflite")
    assert result.median_ms == 7.1
    argv = json.loads(argv_log.read_text())
    assert argv[:4] == [
        "--model=/models/a b.tflite",
        "--num_threads=2",
        "--warmup_runs=3",
        "--num_runs=11",
    ]
    assert argv[4].startswith("--result_json=")


def test_nonzero_exit_raises_with_command_and_output(tmp_path):
    body = "print('loading...'); print('Model file not found: x'); sys.exit(3)\n"
    backend = LiteRTBenchmarkBackend(command=fake_tool(tmp_path, body))
    with pytest.raises(LatencyError) as info:
        backend.measure("x.tflite")
    assert "exit code 3" in str(info.value)
    assert "Model file not found" in info.value.output_tail
    assert "--model=x.tflite" in info.value.command


def test_missing_or_bad_json_raises(tmp_path):
    silent = LiteRTBenchmarkBackend(command=fake_tool(tmp_path, "print('done')\n"))
    with pytest.raises(LatencyError, match="no --result_json"):
        silent.measure("x.tflite")
    body = "open(args['result_json'], 'w').write('{\"latency\": {}}')\n"
    broken = LiteRTBenchmarkBackend(command=fake_tool(tmp_path, body))
    with pytest.raises(LatencyError, match="cannot read"):
        broken.measure("x.tflite")


def test_timeout_kills_the_tool(tmp_path):
    body = "print('started', flush=True); time.sleep(60)\n"
    backend = LiteRTBenchmarkBackend(command=fake_tool(tmp_path, body), timeout_s=1)
    start = time.monotonic()
    with pytest.raises(LatencyError, match="timed out") as info:
        backend.measure("x.tflite")
    assert time.monotonic() - start < 10
    assert "started" in info.value.output_tail


def test_cpu_pinning_prefixes_taskset():
    backend = LiteRTBenchmarkBackend(cpus=[1, 0], command=["tool"])
    assert backend.build_command("m.tflite", "r.json")[:4] == [
        "taskset",
        "-c",
        "0,1",
        "tool",
    ]
    assert dict(backend.fingerprint().options)["cpus"] == "0,1"


def test_default_command_and_registry():
    command = default_command()
    assert command[-1].endswith("litert-benchmark") or command[-1].endswith(
        "benchmark_litert_model"
    )
    assert isinstance(make_backend("litert-benchmark"), LiteRTBenchmarkBackend)
