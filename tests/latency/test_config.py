"""LatencyConfig, the backends it builds, and opening a lookup-table file."""

from __future__ import annotations

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
    ],
)
def test_config_rejects_bad_combinations(kwargs, message):
    with pytest.raises(ValueError) as info:
        LatencyConfig(**kwargs)
    assert message in str(info.value)


def test_backends_are_cached_unless_the_cache_is_off(tmp_path):
    cached = backend_from_config(
        LatencyConfig(num_runs=5, cpus=(0,), cache_path=str(tmp_path / "c.sqlite"))
    )
    assert isinstance(cached, CachedBackend) and not cached.bypass
    assert isinstance(cached.backend, HostBackend)
    assert cached.backend.options.num_runs == 5
    assert cached.backend.options.cpus == (0,)
    bypass = backend_from_config(
        LatencyConfig(cache_path=str(tmp_path / "c.sqlite"), bypass_cache=True)
    )
    assert bypass.bypass
    plain = backend_from_config(LatencyConfig(backend="litert-benchmark"))
    assert isinstance(plain, LiteRTBenchmarkBackend)


def test_benchmark_model_local_and_adb_pool():
    local = backend_from_config(
        LatencyConfig(backend="benchmark_model", benchmark_model="/opt/bm", cpus=(1,))
    )
    assert isinstance(local, LocalBenchmarkModelBackend)
    assert local.cpus == (1,)
    config = LatencyConfig(
        backend="benchmark_model",
        benchmark_model="/opt/bm",
        serials=("S1", "S2"),
        taskset_mask="f0",
        num_runs=12,
    )
    backends = backends_from_config(config)
    assert [type(b) for b in backends] == [AdbBenchmarkModelBackend] * 2
    assert [b.adb.requested_serial for b in backends] == ["S1", "S2"]
    assert all(b.taskset_mask == "f0" and b.options.num_runs == 12 for b in backends)
    assert len(pool_from_config(config)) == 2
    with pytest.raises(ValueError, match="--serial lists 2 devices"):
        backend_from_config(config)
    phone = backend_from_config(
        LatencyConfig(backend="benchmark_model", benchmark_model="bm", android=True)
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
