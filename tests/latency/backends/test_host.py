"""Host backend: LiteRT + XNNPACK, benchmark_model's run loop."""

from __future__ import annotations

import os
import time

import pytest

from mnas.latency.backend import make_backend
from mnas.latency.backends.host import HostBackend, HostOptions
from mnas.latency.backends.sysinfo import host_cpu_model, package_version
from mnas.latency.errors import LatencyError
from mnas.latency.export import export_tflite
from mnas.testing.latency_models import tiny_convnet


@pytest.fixture(scope="module")
def tiny_paths(tmp_path_factory):
    model = tiny_convnet(input_size=32, width=16)
    folder = tmp_path_factory.mktemp("host")
    paths = {}
    for name, kwargs in {
        "float": {"quantization": "none"},
        "int8": {"quantization": "int8", "int8_io": True, "num_calibration_samples": 4},
    }.items():
        path = folder / f"{name}.tflite"
        path.write_bytes(export_tflite(model, **kwargs))
        paths[name] = str(path)
    return paths


def quick(**kwargs) -> HostBackend:
    defaults = dict(warmup_runs=2, warmup_min_secs=0.0, num_runs=10, min_secs=0.0)
    return HostBackend(**{**defaults, **kwargs})


def test_measure_returns_consistent_statistics(tiny_paths):
    result = quick().measure(tiny_paths["float"])
    assert result.runs == 10
    assert 0 < result.min_ms <= result.p5_ms <= result.median_ms
    assert result.median_ms <= result.p95_ms <= result.max_ms
    assert result.min_ms <= result.mean_ms <= result.max_ms
    assert result.std_ms >= 0
    assert result.init_ms is not None and result.init_ms > 0
    assert result.first_run_ms is not None and result.first_run_ms > 0
    assert not result.median_is_mean
    # A 32x32 toy model runs far below a second.
    assert result.median_ms < 1000


def test_fingerprint_names_host_threads_and_runtime():
    fp = quick(num_threads=2, cpus=[0]).fingerprint()
    assert fp.backend == "host"
    assert fp.device_id == host_cpu_model()
    assert fp.num_threads == 2
    assert package_version("ai-edge-litert") in fp.runtime_version
    assert dict(fp.options) == {"delegate": "xnnpack", "cpus": "0"}
    assert quick().fingerprint().key() != fp.key()
    # Loop settings do not change the expected latency, so not the key.
    assert quick(num_runs=99).fingerprint() == quick().fingerprint()


def test_min_secs_keeps_running_past_num_runs(tiny_paths):
    start = time.perf_counter()
    result = quick(num_runs=2, min_secs=0.3).measure(tiny_paths["float"])
    assert time.perf_counter() - start >= 0.3
    assert result.runs > 2
    # The timed runs themselves must fill most of the minimum time.
    assert result.mean_ms * result.runs >= 0.5 * 300


def test_max_secs_caps_the_run_count(tiny_paths):
    start = time.perf_counter()
    result = quick(num_runs=10**9, max_secs=0.2).measure(tiny_paths["float"])
    assert time.perf_counter() - start < 5
    assert 1 <= result.runs < 10**9


def test_warmup_min_secs_is_honoured(tiny_paths):
    calls = []

    def clock() -> float:
        calls.append(1)
        return time.perf_counter()

    quick(warmup_runs=1, warmup_min_secs=0.0, num_runs=1, clock=clock).measure(
        tiny_paths["float"]
    )
    short = len(calls)
    calls.clear()
    start = time.perf_counter()
    quick(warmup_runs=1, warmup_min_secs=0.2, num_runs=1, clock=clock).measure(
        tiny_paths["float"]
    )
    assert time.perf_counter() - start >= 0.2
    assert len(calls) > short + 10


def test_xnnpack_is_applied_and_can_be_disabled(tiny_paths):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from mnas.latency.backends.host import uses_delegate

    def loaded(resolver):
        interpreter = Interpreter(
            model_path=tiny_paths["float"], experimental_op_resolver_type=resolver
        )
        interpreter.allocate_tensors()
        return interpreter

    assert uses_delegate(loaded(OpResolverType.BUILTIN))
    assert not uses_delegate(loaded(OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    plain = quick(use_xnnpack=False)
    assert dict(plain.fingerprint().options)["delegate"] == "none"
    assert plain.measure(tiny_paths["float"]).runs == 10


def test_int8_model_is_timed(tiny_paths):
    result = quick().measure(tiny_paths["int8"])
    assert result.runs == 10 and result.median_ms > 0


def test_cpu_pinning_applies_during_measure_and_rounds_and_is_restored(tiny_paths):
    before = os.sched_getaffinity(0)
    seen = []

    def clock() -> float:
        seen.append(frozenset(os.sched_getaffinity(0)))
        return time.perf_counter()

    cpu = min(before)
    quick(cpus=[cpu], clock=clock).measure(tiny_paths["float"])
    quick(cpus=[cpu], clock=clock).measure_rounds(tiny_paths["float"], 2)
    assert set(seen) == {frozenset({cpu})}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ValueError, match="cannot pin"):
        quick(cpus=[max(before) + 1000]).measure(tiny_paths["float"])


def test_unloadable_file_raises_latency_error(tmp_path):
    bad = tmp_path / "garbage model.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(LatencyError) as info:
        quick().measure(str(bad))
    assert "garbage model.tflite" in str(info.value.command)
    missing = tmp_path / "missing.tflite"
    with pytest.raises(LatencyError):
        quick().measure(str(missing))


def test_options_are_validated():
    with pytest.raises(ValueError):
        HostOptions(num_threads=0)
    with pytest.raises(ValueError):
        HostOptions(num_runs=0)
    with pytest.raises(ValueError):
        HostOptions(max_secs=0)


def test_make_backend_builds_host_with_options():
    backend = make_backend("host", num_threads=1, num_runs=7)
    assert isinstance(backend, HostBackend)
    assert backend.options.num_runs == 7
    with pytest.raises(ValueError, match="unknown latency backend"):
        make_backend("nope")


def test_measure_rounds_uses_a_fresh_interpreter_per_round(tiny_paths, monkeypatch):
    backend = quick(num_runs=4)
    loads = []
    original = backend._load

    def counting_load(path):
        interpreter = original(path)
        loads.append(id(interpreter))
        return interpreter

    monkeypatch.setattr(backend, "_load", counting_load)
    rounds = backend.measure_rounds(tiny_paths["float"], 3)
    assert len(loads) == 3
    assert len(rounds) == 3
    for item in rounds:
        assert len(item.samples_ms) == 4 == item.result.runs
        assert item.result == type(item.result).from_samples(
            item.samples_ms,
            backend.fingerprint(),
            init_ms=item.result.init_ms,
            first_run_ms=item.result.first_run_ms,
        )
    with pytest.raises(ValueError, match="rounds must be >= 1, got 0"):
        backend.measure_rounds(tiny_paths["float"], 0)
