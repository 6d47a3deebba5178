"""make_executor / make_latency_backend: what the SearchConfig says is what
runs the trials and times the models, and a missing device fails up front."""

from __future__ import annotations

import os

import pytest

from mnas.latency import LatencyConfig, LatencyError
from mnas.latency.backends.benchmark_model import LocalBenchmarkModelBackend
from mnas.latency.backends.host import HostBackend
from mnas.latency.measure.adaptive import AdaptiveBackend
from mnas.latency.pool import DevicePool
from mnas.search import SearchConfig
from mnas.search.workers import executors, ray_executor, ray_latency
from mnas.search.workers.pool import SubprocessPool
from mnas.testing.fake_adb import phone_farm, unplug

TARGET = "mnas.testing.worker_fakes:env_fake_evaluate"


def test_local_executor_is_a_subprocess_pool_of_num_workers(tmp_path):
    config = SearchConfig(work_dir=str(tmp_path), num_workers=3, trial_timeout_s=7.0)
    log_dir = tmp_path / "workers"
    pool = executors.make_executor(config, TARGET, str(log_dir), log=pytest.fail)
    try:
        assert isinstance(pool, SubprocessPool)
        assert pool.free_slots() == 3
        assert pool.worker_pids() == []  # workers start with the first trial
        assert log_dir.is_dir()
    finally:
        pool.close()


class _RecordingRayExecutor:
    """Stands in for RayExecutor: records how it was made, starts no Ray."""

    def __init__(self, target, resources, **options):
        self.made = dict(target=target, resources=resources, **options)
        self.resources = resources

    def capacity(self) -> int:
        return 4


def test_ray_executor_gets_the_configs_resources_address_and_limits(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(ray_executor, "RayExecutor", _RecordingRayExecutor)
    config = SearchConfig(
        work_dir=str(tmp_path),
        executor="ray",
        ray_address="ray://head:10001",
        trial_resources={"GPU": 1, "CPU": 2},
        trial_retries=5,
        trial_timeout_s=90.0,
    )
    lines: list[str] = []
    executor = executors.make_executor(
        config, TARGET, str(tmp_path / "w"), max_concurrent=2, log=lines.append
    )
    assert executor.made == dict(
        target=TARGET,
        resources={"CPU": 2.0, "GPU": 1.0},
        address="ray://head:10001",
        trial_timeout_s=90.0,
        trial_retries=5,
        max_concurrent=2,
        log=lines.append,
    )
    assert lines == [
        "executor: Ray, 4 trial slots now (CPU=2, GPU=1 each), "
        "5 retries after a lost node or worker"
    ]
    assert not (tmp_path / "w").exists()  # no local worker logs


def test_one_local_latency_device_is_one_backend_with_the_configs_settings(tmp_path):
    host = executors.make_latency_backend(
        SearchConfig(work_dir=str(tmp_path), latency=LatencyConfig(num_threads=2)),
        log=pytest.fail,
    )
    # The search measures adaptively (re-measuring noisy results) by default.
    assert isinstance(host, AdaptiveBackend) and isinstance(host.backend, HostBackend)
    assert host.fingerprint().num_threads == 2


def test_a_missing_benchmark_model_binary_fails_before_any_training(tmp_path):
    missing = str(tmp_path / "no" / "benchmark_model")
    config = SearchConfig(
        work_dir=str(tmp_path),
        latency=LatencyConfig(backend="benchmark_model", benchmark_model=missing),
    )
    with pytest.raises(LatencyError) as info:
        executors.make_latency_backend(config, log=pytest.fail)
    assert info.value.reason == (
        f"cannot read benchmark_model binary: [Errno 2] No such file or "
        f"directory: {missing!r}"
    )


@pytest.fixture
def farm(tmp_path, monkeypatch):
    farm = phone_farm(tmp_path / "farm", ["SER1", "SER2"])
    for key, value in farm["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PATH", farm["bin_dir"] + os.pathsep + os.environ["PATH"])
    return farm


def _phones_config(tmp_path, farm) -> SearchConfig:
    return SearchConfig(
        work_dir=str(tmp_path),
        latency=LatencyConfig(
            backend="benchmark_model",
            benchmark_model=farm["binary"],
            serials=("SER1", "SER2"),
        ),
    )


def test_several_serials_make_a_device_pool_of_one_backend_each(tmp_path, farm):
    pool = executors.make_latency_backend(_phones_config(tmp_path, farm))
    assert isinstance(pool, DevicePool)
    assert all(isinstance(b, AdaptiveBackend) for b in pool.backends)
    phones = [b.backend for b in pool.backends]
    assert [b.adb.requested_serial for b in phones] == ["SER1", "SER2"]
    assert not any(isinstance(b, LocalBenchmarkModelBackend) for b in phones)


def test_an_unplugged_phone_of_the_pool_fails_before_any_training(tmp_path, farm):
    unplug(farm["devices"], "SER2")
    with pytest.raises(LatencyError) as info:
        executors.make_latency_backend(_phones_config(tmp_path, farm))
    assert info.value.reason == (
        "device 'SER2' is not connected; `adb devices` lists: SER1 (device)"
    )


class _RecordingLatencyPool:
    def __init__(self, latency, resource, address=None, log=print):
        self.made = dict(latency=latency, resource=resource, address=address)

    def describe(self) -> str:
        return "2 phone(s): SER1, SER2"


def test_a_latency_resource_times_on_the_cluster_not_here(tmp_path, monkeypatch):
    monkeypatch.setattr(ray_latency, "RayLatencyPool", _RecordingLatencyPool)
    latency = LatencyConfig(backend="benchmark_model", benchmark_model="/absent/bm")
    config = SearchConfig(
        work_dir=str(tmp_path),
        executor="ray",
        ray_address="auto",
        latency_resource="phone",
        latency=latency,
    )
    lines: list[str] = []
    pool = executors.make_latency_backend(config, log=lines.append)
    # The binary is the cluster's to find: nothing is checked on this machine.
    assert pool.made == dict(latency=latency, resource="phone", address="auto")
    assert lines == ["latency: 2 phone(s): SER1, SER2"]
