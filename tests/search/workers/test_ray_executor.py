"""The Ray executor's parts that need no cluster: resources, slots, worker
environment, failure reasons, the config fields and flags that choose it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from absl import flags

from mnas.flags.search import (
    EXECUTORS as FLAG_EXECUTORS,
)
from mnas.flags.search import (
    define_search_flags,
    max_concurrent_trials,
    parse_resources,
    search_config_from_flags,
)
from mnas.latency import LatencyConfig
from mnas.search.config import (
    EXECUTORS,
    RESUMABLE_FIELDS,
    SearchConfig,
    SearchConfigError,
)
from mnas.search.trial import TrialRecord
from mnas.search.workers.ray_executor import (
    describe_resources,
    ray_task_options,
    slots_on,
    trial_env,
)


def test_slots_count_whole_trials_on_a_node_and_none_without_a_resource():
    node = {"CPU": 8.0, "GPU": 2.0, "memory": 3e10, "phone": 1.0}
    assert slots_on(node, {"CPU": 2.0, "GPU": 1.0}) == 2  # GPUs bound it
    assert slots_on(node, {"CPU": 3.0}) == 2
    assert slots_on(node, {"CPU": 0.5, "GPU": 0.0}) == 16
    assert slots_on({"CPU": 1.0}, {"GPU": 0.1}) == 0
    assert slots_on({"CPU": 0.3}, {"CPU": 0.1}) == 3  # float steps count whole


def test_ray_options_split_ray_and_custom_resources():
    assert ray_task_options({"CPU": 2.0, "GPU": 1.0, "phone": 1.0}) == {
        "num_cpus": 2.0,
        "num_gpus": 1.0,
        "resources": {"phone": 1.0},
    }
    assert ray_task_options({"CPU": 1.0, "memory": 2e9}) == {
        "num_cpus": 1.0,
        "num_gpus": 0,
        "memory": 2e9,
    }


def test_a_cpu_trial_sees_no_gpu_and_uses_its_cpus_as_threads():
    cpu = trial_env({"CPU": 2.0})
    assert cpu["CUDA_VISIBLE_DEVICES"] == ""
    assert (cpu["TF_NUM_INTRAOP_THREADS"], cpu["TF_NUM_INTEROP_THREADS"]) == ("2", "1")
    gpu = trial_env({"CPU": 0.5, "GPU": 1.0})
    assert "CUDA_VISIBLE_DEVICES" not in gpu  # Ray sets it to the trial's GPU
    assert gpu["TF_NUM_INTRAOP_THREADS"] == "1"


def test_resources_read_as_one_line():
    assert describe_resources({"GPU": 1.0, "CPU": 2.0}) == "CPU=2, GPU=1"
    assert describe_resources({"memory": 2**31}) == "memory=2.0GiB"


def test_ray_errors_name_the_reason_and_whether_a_retry_can_help():
    pytest.importorskip("ray")
    from ray import exceptions as rex

    from mnas.search.workers.ray_executor import failure_reason

    assert failure_reason(rex.NodeDiedError("node x died")) == ("node lost", True)
    assert failure_reason(rex.OutOfMemoryError("low memory")) == (
        "out of memory (Ray's memory monitor killed its worker)",
        True,
    )
    assert failure_reason(rex.WorkerCrashedError()) == (
        "worker crashed (killed, out of memory or its node lost)",
        True,
    )
    assert failure_reason(rex.TaskCancelledError()) == ("cancelled", False)
    assert failure_reason(rex.RuntimeEnvSetupError("pip failed")) == (
        "Ray error (RuntimeEnvSetupError)",
        False,
    )


# -- the config ------------------------------------------------------------------


def test_executor_fields_round_trip_through_config_json():
    config = SearchConfig(
        work_dir="w",
        executor="ray",
        ray_address="head:6379",
        trial_resources={"GPU": 1, "CPU": 2},
        trial_retries=0,
        latency_resource="phone",
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["trial_resources"] == {"CPU": 2.0, "GPU": 1.0}
    assert SearchConfig.from_dict(data) == config
    assert config.trial_resources == (("CPU", 2.0), ("GPU", 1.0))


def test_a_config_written_before_the_executor_fields_runs_locally():
    old = SearchConfig(work_dir="w").to_dict()
    for name in ("executor", "ray_address", "trial_resources", "trial_retries"):
        del old[name]
    del old["latency_resource"]
    config = SearchConfig.from_dict(old)
    assert (config.executor, config.trial_resource_dict) == ("local", {"CPU": 1.0})


def test_where_trials_run_may_change_on_resume_but_not_what_times_them():
    assert {"executor", "ray_address", "trial_resources", "trial_retries"} <= (
        RESUMABLE_FIELDS
    )
    assert "latency_resource" not in RESUMABLE_FIELDS
    assert FLAG_EXECUTORS == EXECUTORS


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"executor": "slurm"}, "executor must be one of local, ray, got 'slurm'"),
        ({"trial_retries": -1}, "trial_retries must be in [0, 100], got -1"),
        ({"ray_address": "auto"}, "ray_address needs executor 'ray' (got 'local')"),
        (
            {"latency_resource": "phone"},
            "latency_resource needs executor 'ray' (got 'local')",
        ),
        (
            {"executor": "ray", "trial_resources": {"CPU": 0}},
            "trial_resources must ask for some resource (e.g. CPU=1): a trial "
            "that needs nothing would be started without limit",
        ),
        (
            {"executor": "ray", "trial_resources": {"GPU": -1}},
            "trial_resources: GPU must be finite and >= 0, got -1",
        ),
        (
            {"executor": "ray", "trial_resources": {" ": 1}},
            "trial_resources holds an empty resource name",
        ),
        (
            {
                "executor": "ray",
                "latency_resource": "phone",
                "latency": LatencyConfig(
                    backend="benchmark_model", benchmark_model="bm", serials=("A",)
                ),
            },
            "latency.serials names phones of this machine; with latency_resource "
            "the cluster's phone resources name them",
        ),
    ],
)
def test_bad_executor_fields_are_refused_naming_the_field(fields, message):
    with pytest.raises(SearchConfigError) as info:
        SearchConfig(work_dir="w", **fields)
    assert str(info.value) == message


def test_a_trial_record_names_its_node_and_old_records_read_without_one():
    record = TrialRecord(0, "RUNNING", 0, (1, 2), node="abc123")
    assert TrialRecord.from_dict(json.loads(record.to_json())).node == "abc123"
    old = json.loads(record.to_json())
    del old["node"]
    assert TrialRecord.from_dict(old).node is None


# -- the flags -------------------------------------------------------------------


def _flags(*args: str) -> flags.FlagValues:
    flag_values = flags.FlagValues()
    define_search_flags(flag_values)
    flag_values(["mnas-search", *args])
    return flag_values


def test_executor_flags_make_the_config():
    flag_values = _flags(
        "--executor=ray",
        "--ray_address=auto",
        "--trial_resources=CPU=2,GPU=0.5,trainer=1",
        "--trial_retries=3",
        "--latency_resource=phone",
        "--num_workers=64",
    )
    config = search_config_from_flags(flag_values, LatencyConfig(), None)
    assert (config.executor, config.ray_address) == ("ray", "auto")
    assert config.trial_resource_dict == {"CPU": 2.0, "GPU": 0.5, "trainer": 1.0}
    assert (config.trial_retries, config.latency_resource) == (3, "phone")
    assert max_concurrent_trials(flag_values) == 64
    assert max_concurrent_trials(_flags("--executor=ray")) is None


def test_the_default_is_the_local_pool():
    config = search_config_from_flags(_flags(), LatencyConfig(), None)
    assert (config.executor, config.ray_address, config.latency_resource) == (
        "local",
        None,
        None,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ray_address=auto"], "--ray_address needs --executor=ray (got --executor=local)"),
        (["--trial_resources=CPU=2"], "--trial_resources needs --executor=ray (got --executor=local)"),
        (["--executor=ray", "--trial_retries=-1"], "--trial_retries must be >= 0, got -1"),
        (["--executor=ray", "--trial_resources=CPU"], "--trial_resources must be NAME=AMOUNT[,NAME=AMOUNT...] with finite amounts, got 'CPU'"),
        (["--executor=ray", "--trial_resources=GPU=inf"], "--trial_resources must be NAME=AMOUNT[,NAME=AMOUNT...] with finite amounts, got 'GPU=inf'"),
        (["--executor=ray", "--trial_resources=CPU=1,CPU=2"], "--trial_resources names CPU twice"),
    ],
)  # fmt: skip
def test_bad_executor_flags_are_refused_in_one_line(args, message):
    with pytest.raises(ValueError) as info:
        search_config_from_flags(_flags(*args), LatencyConfig(), None)
    assert str(info.value) == message


def test_parse_resources_keeps_fractions():
    assert parse_resources(" CPU=0.25 , GPU=1") == {"CPU": 0.25, "GPU": 1.0}


def test_the_local_executor_never_imports_ray(tmp_path):
    code = (
        "import sys\n"
        "from mnas.search import SearchConfig, make_executor, CANDIDATE_TARGET\n"
        f"config = SearchConfig(work_dir={str(tmp_path)!r})\n"
        f"pool = make_executor(config, CANDIDATE_TARGET, {str(tmp_path / 'w')!r})\n"
        "pool.close()\n"
        "print(type(pool).__name__, 'ray' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["SubprocessPool", "False"]


# -- latency devices -------------------------------------------------------------


def test_latency_units_are_one_per_serial_resource_else_the_count():
    from mnas.search.workers.ray_latency import latency_units

    cluster = {"CPU": 4.0, "phone:B": 1.0, "phone:A": 1.0, "phone": 3.0}
    assert latency_units("phone", cluster) == [
        ("phone:A", {"phone:A": 1}),
        ("phone:B", {"phone:B": 1}),
    ]
    assert latency_units("latency_host", {"latency_host": 2.0}) == [
        ("latency_host#0", {"latency_host": 1}),
        ("latency_host#1", {"latency_host": 1}),
    ]
    assert latency_units("phone", {"CPU": 4.0}) == []


def test_counted_phones_are_claimed_once_each(tmp_path, monkeypatch):
    """With ``{"phone": N}`` each latency actor claims a phone adb lists that
    no other actor of the machine holds."""
    import os

    from mnas.search.workers import ray_latency
    from mnas.search.workers.ray_executor import RayExecutorError
    from mnas.testing.fake_adb import phone_farm

    farm = phone_farm(tmp_path, ["SER1", "SER2"])
    for key, value in farm["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PATH", farm["bin_dir"] + os.pathsep + os.environ["PATH"])
    monkeypatch.setattr(ray_latency, "LOCK_DIR", str(tmp_path / "locks"))
    first, first_lock = ray_latency._claim_phone()
    second, second_lock = ray_latency._claim_phone()
    assert sorted([first, second]) == ["SER1", "SER2"]
    with pytest.raises(RayExecutorError) as info:
        ray_latency._claim_phone()
    assert str(info.value) == (
        "no free phone on this node: `adb devices` lists 2 usable device(s) and "
        "all are held; declare as many phones as are plugged in"
    )
    first_lock.close()  # its actor died: the phone is free again
    again, again_lock = ray_latency._claim_phone()
    assert again == first
    again_lock.close()
    second_lock.close()
