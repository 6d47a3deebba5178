"""Device pool: parallel, in order, one device per model, errors kept."""

from __future__ import annotations

import threading
import time

import pytest

from mnas.latency.backend import LatencyBackend
from mnas.latency.errors import LatencyError
from mnas.latency.export import export_tflite
from mnas.latency.pool import DevicePool
from mnas.latency.result import BackendFingerprint, LatencyResult
from mnas.testing.latency_models import tiny_convnet


class FakeDevice(LatencyBackend):
    """Sleeps, then answers a latency derived from the file name."""

    name = "fake"

    def __init__(self, serial: str, delay: float = 0.05, broken=()) -> None:
        self.serial = serial
        self.delay = delay
        self.broken = set(broken)
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def fingerprint(self) -> BackendFingerprint:
        return BackendFingerprint.create("fake", "Pixel", self.serial, 1, "v")

    def measure(self, tflite_path: str) -> LatencyResult:
        with self.lock:
            self.seen.append(tflite_path)
        time.sleep(self.delay)
        if tflite_path in self.broken or "*" in self.broken:
            raise LatencyError(f"device {self.serial} crashed", ["bm", tflite_path])
        value = float(tflite_path.removeprefix("m"))
        return LatencyResult.from_samples([value], self.fingerprint())


def test_results_in_input_order_each_model_once_in_parallel():
    devices = [FakeDevice("A"), FakeDevice("B"), FakeDevice("C")]
    paths = [f"m{i}" for i in range(12)]
    start = time.monotonic()
    outcomes = DevicePool(devices).measure_all(paths)
    elapsed = time.monotonic() - start
    assert [o.tflite_path for o in outcomes] == paths
    assert [o.result.median_ms for o in outcomes] == [float(i) for i in range(12)]
    assert [o.index for o in outcomes] == list(range(12))
    seen = [p for d in devices for p in d.seen]
    assert sorted(seen) == sorted(paths)  # each model on exactly one device
    assert all(d.seen for d in devices)  # every device took work
    for outcome in outcomes:
        device = devices[outcome.worker]
        assert outcome.tflite_path in device.seen
        assert outcome.result.fingerprint.device_id == device.serial
    # 12 x 50 ms serially is 0.6 s; three devices need about a third.
    assert elapsed < 0.45


def test_error_is_reported_for_its_model_only():
    devices = [FakeDevice("A", broken={"m3"}), FakeDevice("B", broken={"m3"})]
    outcomes = DevicePool(devices).measure_all([f"m{i}" for i in range(6)])
    assert [o.ok for o in outcomes] == [True, True, True, False, True, True]
    bad = outcomes[3]
    assert "crashed" in bad.error and bad.result is None
    assert isinstance(bad.exception, LatencyError)
    assert bad.exception.command == ["bm", "m3"]
    with pytest.raises(LatencyError, match="crashed"):
        bad.unwrap()
    assert outcomes[4].unwrap().median_ms == 4.0


def test_dead_device_is_retired_and_healthy_one_finishes():
    dead = FakeDevice("DEAD", delay=0.0, broken={"*"})
    healthy = FakeDevice("OK", delay=0.02)
    pool = DevicePool([dead, healthy], max_consecutive_failures=2)
    outcomes = pool.measure_all([f"m{i}" for i in range(10)])
    assert len(dead.seen) == 2
    assert sum(not o.ok for o in outcomes) == 2
    assert sum(o.ok for o in outcomes) == 8


def test_all_devices_retired_leaves_explicit_errors():
    pool = DevicePool([FakeDevice("X", delay=0.0, broken={"*"})], 1)
    outcomes = pool.measure_all(["m1", "m2", "m3"])
    assert [o.worker for o in outcomes] == [0, None, None]
    assert "retired" in outcomes[2].error
    with pytest.raises(LatencyError, match="retired"):
        outcomes[2].unwrap()


def test_empty_and_invalid():
    assert DevicePool([FakeDevice("A")]).measure_all([]) == []
    with pytest.raises(ValueError):
        DevicePool([])
    with pytest.raises(ValueError, match="one CPU per worker"):
        DevicePool.host(2, cpus=[0])


def test_host_pool_times_real_models(tmp_path):
    flatbuffer = export_tflite(tiny_convnet(input_size=32, width=8))
    paths = []
    for name in ("a", "b", "c"):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(flatbuffer)
        paths.append(str(path))
    pool = DevicePool.host(
        2, cpus=[0, 0], warmup_runs=1, warmup_min_secs=0, num_runs=5, min_secs=0
    )
    outcomes = pool.measure_all(paths)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert [o.result.runs for o in outcomes] == [5, 5, 5]
    assert {dict(o.result.fingerprint.options)["cpus"] for o in outcomes} == {"0"}


def test_adb_pool_builds_one_backend_per_serial():
    pool = DevicePool.adb("/bin/bm", ["S1", "S2"], adb_path="/nonexistent/adb")
    assert [b.adb.requested_serial for b in pool.backends] == ["S1", "S2"]
    outcomes = pool.measure_all(["a.tflite"])
    assert not outcomes[0].ok and "cannot start" in outcomes[0].error
