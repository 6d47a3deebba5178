"""LatencyConfig, the backends it builds, and opening a lookup-table file."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mnas.latency.backends.benchmark_model import (
    AdbBenchmarkModelBackend,
    LocalBenchmarkModelBackend,
)
from mnas.latency.backends.host import HostBackend
from mnas.latency.backends.litert_benchmark import LiteRTBenchmarkBackend
from mnas.latency.cache import CachedBackend
from mnas.latency.config import (
    LatencyConfig,
    backend_from_config,
    backends_from_config,
    check_backends,
    open_lookup_table,
    pool_from_config,
)
from mnas.latency.errors import LatencyError
from mnas.latency.lut.table import LookupTableError


def test_config_round_trips_through_json():
    config = LatencyConfig(
        backend="benchmark_model",
        benchmark_model="/opt/bm",
        serials=("A", "B"),
        taskset_mask="f0",
        num_runs=20,
        cache_path="/tmp/c.sqlite",
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert LatencyConfig.from_dict(data) == config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "gpu"}, "unknown latency backend 'gpu'; choose one of host"),
        ({"num_threads": 0}, "--num_threads must be an integer in [1, 256], got 0"),
        (
            {"num_runs": 0},
            "--num_runs must be an integer in [1, 100000] or None, got 0",
        ),
        ({"num_threads": "2"}, "--num_threads must be an integer in [1, 256], got '2'"),
        ({"serials": "A"}, "--serial must be a list of serials, got 'A'"),
        ({"cpus": (0, -1)}, "--cpus must be an integer in [0, 4095], got -1"),
        ({"cpus": ()}, "--cpus lists no CPU"),
        ({"android": "yes"}, "--android must be True or False, got 'yes'"),
        (
            {
                "backend": "benchmark_model",
                "benchmark_model": "b",
                "android": True,
                "taskset_mask": "0xfg",
            },
            "--taskset_mask must be hex (e.g. f0), got '0xfg'",
        ),
        ({"backend": ["host"]}, "unknown latency backend ['host']; choose one of host"),
        (
            {"backend": "benchmark_model"},
            "--latency_backend=benchmark_model needs --benchmark_model=PATH",
        ),
        (
            {"serials": ("A",)},
            "--serial needs --latency_backend=benchmark_model (got "
            "--latency_backend=host)",
        ),
        ({"android": True}, "--android needs --latency_backend=benchmark_model"),
        (
            {
                "backend": "benchmark_model",
                "benchmark_model": "bm",
                "taskset_mask": "f",
            },
            "--taskset_mask applies on a phone (--android or --serial)",
        ),
        (
            {
                "serials": ("A", "A"),
                "backend": "benchmark_model",
                "benchmark_model": "b",
            },
            "--serial lists a device twice: A,A",
        ),
        (
            {"target_precision": 0.0},
            "--latency_precision must be a number in (0, 1), got 0.0",
        ),
        (
            {"confidence": 1.0},
            "--latency_confidence must be a number in [0.5, 1), got 1.0",
        ),
        (
            {"min_rounds": 1},
            "--latency_min_rounds must be an integer in [2, 10000], got 1",
        ),
        (
            {"min_rounds": 6, "max_rounds": 5},
            "--latency_max_rounds must be an integer in [6, 10000], got 5",
        ),
        (
            {"max_measure_s": float("inf")},
            "--latency_max_seconds must be a number in (0, 86400], got inf",
        ),
        (
            {"remeasures": -1},
            "--latency_remeasures must be an integer in [0, 100], got -1",
        ),
        (
            {"min_rounds": 2.5},
            "--latency_min_rounds must be an integer in [2, 10000], got 2.5",
        ),
        (
            {"reference": "resnet-50"},
            "--latency_reference must be a preset (efficientnet-b0, ",
        ),
        (
            {"reference": "mobilenet-v2", "adaptive": False},
            "--latency_reference needs adaptive measurement: the reference is "
            "timed in the same rounds (drop --nolatency_adaptive)",
        ),
        (
            {"ratio_precision": 1.5},
            "--latency_ratio_precision must be a number in (0, 1) or None, got 1.5",
        ),
        (
            {"reference_resolution": 16},
            "--latency_reference_resolution must be an integer in [32, 2048], got 16",
        ),
    ],
)
def test_config_rejects_bad_combinations(kwargs, message):
    with pytest.raises(ValueError) as info:
        LatencyConfig(**kwargs)
    assert message in str(info.value)


def test_backends_are_cached_unless_the_cache_is_off(tmp_path):
    cached = backend_from_config(
        LatencyConfig(
            num_runs=5,
            cpus=(0,),
            cache_path=str(tmp_path / "c.sqlite"),
            adaptive=False,
        )
    )
    assert isinstance(cached, CachedBackend) and not cached.bypass
    assert isinstance(cached.backend, HostBackend)
    assert cached.backend.options.num_runs == 5
    assert cached.backend.options.cpus == (0,)
    assert not cached.require_interval and cached.require_reference is None
    bypass = backend_from_config(
        LatencyConfig(cache_path=str(tmp_path / "c.sqlite"), bypass_cache=True)
    )
    assert bypass.bypass
    plain = backend_from_config(
        LatencyConfig(backend="litert-benchmark", adaptive=False)
    )
    assert isinstance(plain, LiteRTBenchmarkBackend)


def test_adaptive_backends_time_short_rounds_and_cache_with_intervals(tmp_path):
    from mnas.latency.measure.adaptive import AdaptiveBackend, AdaptiveSettings

    config = LatencyConfig(
        cpus=(0,),
        cache_path=str(tmp_path / "c.sqlite"),
        target_precision=0.05,
        confidence=0.9,
        min_rounds=3,
        max_rounds=9,
        max_measure_s=12.5,
        ratio_precision=0.04,
        reference="mobilenet-v2",
        reference_resolution=160,
    )
    cached = backend_from_config(config)
    assert isinstance(cached, CachedBackend) and cached.require_interval
    assert cached.require_reference == "MobileNetV2 1.0 @160"
    adaptive = cached.backend
    assert isinstance(adaptive, AdaptiveBackend)
    assert adaptive.settings == AdaptiveSettings(
        target=0.05,
        confidence=0.9,
        min_rounds=3,
        max_rounds=9,
        max_seconds=12.5,
        ratio_target=0.04,
    )
    assert adaptive.reference.name == "MobileNetV2 1.0 @160"
    host = adaptive.backend
    assert isinstance(host, HostBackend) and host.options.cpus == (0,)
    # One adaptive round is a short loop; --num_runs still sets its runs.
    opts = host.options
    assert (opts.warmup_runs, opts.warmup_min_secs, opts.num_runs, opts.min_secs) == (
        3,
        0.05,
        10,
        0.1,
    )
    assert (
        backend_from_config(
            dataclasses.replace(config, num_runs=4)
        ).backend.backend.options.num_runs
        == 4
    )
    # The fingerprint (the cache key) is the host's: loop lengths are not in it.
    assert cached.fingerprint() == HostBackend(cpus=[0]).fingerprint()
    # Every device of a pool shares one reference (exported once).
    phones = backends_from_config(
        LatencyConfig(
            backend="benchmark_model",
            benchmark_model="/opt/bm",
            serials=("S1", "S2"),
            reference="mnasnet-a1",
        )
    )
    assert phones[0].reference is phones[1].reference
    assert phones[0].reference.name == "mnasnet-a1 @224"
    assert isinstance(phones[0].backend, AdbBenchmarkModelBackend)


def test_a_reference_is_exported_when_first_timed(tmp_path, monkeypatch):
    from mnas.latency import export
    from mnas.latency.config import reference_model

    made = []

    def fake_export(spec, path, resolution=None):
        made.append((spec.name, resolution))
        with open(path, "wb") as handle:
            handle.write(b"tflite")
        return export.ExportedFile(path, "none", 6, 0.0, b"tflite")

    monkeypatch.setattr(export, "export_to_file", fake_export)
    config = LatencyConfig(reference="mobilenet-v2", reference_resolution=96)
    reference = reference_model(config, str(tmp_path))
    assert made == []
    path = reference.path()
    assert reference.path() == path and made == [("mobilenet-v2", 96)]
    assert path == str(tmp_path / "reference-mobilenet-v2-96.tflite")
    assert reference_model(LatencyConfig()) is None


def test_benchmark_model_local_and_adb_pool():
    local = backend_from_config(
        LatencyConfig(
            backend="benchmark_model",
            benchmark_model="/opt/bm",
            cpus=(1,),
            adaptive=False,
        )
    )
    assert isinstance(local, LocalBenchmarkModelBackend)
    assert local.cpus == (1,)
    config = LatencyConfig(
        backend="benchmark_model",
        benchmark_model="/opt/bm",
        serials=("S1", "S2"),
        taskset_mask="f0",
        num_runs=12,
        adaptive=False,
    )
    backends = backends_from_config(config)
    assert [type(b) for b in backends] == [AdbBenchmarkModelBackend] * 2
    assert [b.adb.requested_serial for b in backends] == ["S1", "S2"]
    assert all(b.taskset_mask == "f0" and b.options.num_runs == 12 for b in backends)
    assert len(pool_from_config(config)) == 2
    with pytest.raises(ValueError, match="--serial lists 2 devices"):
        backend_from_config(config)
    phone = backend_from_config(
        LatencyConfig(
            backend="benchmark_model",
            benchmark_model="bm",
            android=True,
            adaptive=False,
        )
    )
    assert isinstance(phone, AdbBenchmarkModelBackend)


def test_check_backends_reaches_each_device_before_any_export():
    local = backend_from_config(
        LatencyConfig(backend="benchmark_model", benchmark_model="/nonexistent/bm")
    )
    with pytest.raises(LatencyError) as info:
        check_backends([local])
    assert info.value.reason.startswith("cannot read benchmark_model binary: ")
    check_backends([HostBackend()])


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"garbage\n",
            "{path}: line 1 is corrupt (Expecting value: line 1 column 1 (char 0)); "
            "only a torn last line is cut automatically: repair or remove this line "
            "by hand",
        ),
        (
            b"garbage",
            "{path} is not a lookup table: it holds no complete JSON header line",
        ),
        (
            b'{"format": "mnas-latency-lut", "format_version": 1}\n',
            "{path}: line 1 is not a valid table header (KeyError('fingerprint'))",
        ),
        (b"[1, 2]\n", "{path} is not a latency lookup table"),
        (b"", "{path} is empty: it has no header"),
    ],
)
def test_open_lookup_table_names_a_file_that_is_no_table(tmp_path, content, message):
    path = tmp_path / "t.lut.jsonl"
    path.write_bytes(content)
    with pytest.raises(LookupTableError) as info:
        open_lookup_table(str(path))
    assert str(info.value) == message.format(path=path)
    with pytest.raises(LookupTableError) as info:
        open_lookup_table(str(tmp_path))
    assert str(info.value) == f"{tmp_path} is a directory, not a lookup-table file"
