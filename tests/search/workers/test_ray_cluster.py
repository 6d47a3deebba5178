"""The Ray executor and the Ray latency devices on a real three-node cluster
(``conftest.py``), with the fake trainer and fake phones: where trials run,
what comes back, what a lost node, a failing or hanging trial, a dropped
phone and a killed driver do."""

from __future__ import annotations

import functools
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from mnas.latency.config import LatencyConfig
from mnas.search.runner import Search
from mnas.search.trial import Journal
from mnas.search.workers.ray_executor import RayExecutor, RayExecutorError
from mnas.search.workers.ray_latency import RayLatencyPool
from mnas.search_space import get_search_space
from mnas.testing.fake_adb import phone_runs, unplug
from mnas.testing.fakes import FakeLatencyBackend
from mnas.testing.ray_search import fake_trial, search_config

pytest.importorskip("ray")

SPACE = get_search_space("mnasnet")
PHONE_MEAN_MS = 7.0332  # the fake benchmark_model's "Inference (avg)"


def _phone_latency(farm) -> LatencyConfig:
    # One plain round per model: these tests are about which phone times what
    # and when; adaptive rounds are tested in tests/latency/measure.
    return LatencyConfig(
        backend="benchmark_model",
        benchmark_model=farm["binary"],
        android=True,
        adaptive=False,
    )


def _task(trial_id: int, models_dir) -> dict:
    actions = SPACE.sample(__import__("numpy").random.default_rng(trial_id))
    return {
        "trial_id": trial_id,
        "arch": SPACE.decode(actions).to_dict(),
        "tflite_path": str(models_dir / f"trial-{trial_id}.tflite"),
    }


def _wait_for(executor: RayExecutor, count: int, limit_s: float = 120.0) -> dict:
    outcomes = {}
    deadline = time.monotonic() + limit_s
    while len(outcomes) < count:
        assert time.monotonic() < deadline, f"only {sorted(outcomes)} finished"
        outcomes.update({o.trial_id: o for o in executor.poll(1.0)})
    return outcomes


def _search(config, executor, backend, logs):
    return Search(
        config,
        executor,
        backend,
        log=logs.append,
        progress_stream=io.StringIO(),
    )


def test_a_search_spreads_trials_over_the_nodes_and_times_them_on_the_phones(
    ray_cluster, tmp_path
):
    logs: list[str] = []
    config = search_config(str(tmp_path), 6, latency=_phone_latency(ray_cluster.farm))
    executor = RayExecutor(
        functools.partial(fake_trial, {"sleep_s": 0.5}), {"CPU": 1}, log=logs.append
    )
    assert executor.capacity() == 2  # one CPU on each worker node
    phones = RayLatencyPool(config.latency, "phone", log=logs.append)
    try:
        _search(config, executor, phones, logs).run()
    finally:
        phones.close()

    latest = Journal.open(str(tmp_path / "trials.jsonl")).latest()
    assert sorted(latest) == list(range(6))
    assert {r.status for r in latest.values()} == {"COMPLETED"}
    nodes = Counter(r.node for r in latest.values())
    assert set(nodes) == {ray_cluster.trainer.node_id, ray_cluster.phones.node_id}
    serials = {r.latency["fingerprint"]["device_id"] for r in latest.values()}
    assert serials <= {"SER1", "SER2"}
    kept = 0
    for record in latest.values():
        assert record.latency_ms == pytest.approx(PHONE_MEAN_MS)
        assert os.path.dirname(record.tflite_path) == str(tmp_path / "models")
        if os.path.exists(record.tflite_path):  # the top-k models are kept
            kept += 1
            # The model's bytes came back through Ray into the work directory.
            with open(record.tflite_path) as handle:
                assert json.load(handle)["actions"] == list(
                    SPACE.encode(SPACE.decode(record.actions))
                )
    assert kept == config.top_k


def test_each_phone_times_one_model_at_a_time_on_its_own_node(ray_cluster, tmp_path):
    farm = ray_cluster.farm
    farm["times"].write_text("")
    pool = RayLatencyPool(_phone_latency(farm), "phone")
    try:
        assert sorted(u.serial for u in pool.units) == ["SER1", "SER2"]
        assert {u.node for u in pool.units} == {ray_cluster.phones.node_id}
        paths = []
        for i in range(6):
            paths.append(tmp_path / f"m{i}.tflite")
            paths[-1].write_bytes(b"TFL3 fake model %d" % i)
        outcomes = pool.measure_all([str(p) for p in paths])
    finally:
        pool.close()
    assert [o.result.mean_ms for o in outcomes] == [pytest.approx(PHONE_MEAN_MS)] * 6
    runs = phone_runs(farm["times"])
    assert sorted(runs) == ["SER1", "SER2"]
    assert sum(len(events) for events in runs.values()) == 12
    for events in runs.values():
        kinds = [kind for kind, _ in events]
        assert kinds == ["start", "end"] * (len(events) // 2)  # never two at once
        times = [when for _, when in events]
        assert times == sorted(times)
    # Every pushed model was deleted from its phone again.
    for serial in ("SER1", "SER2"):
        left = os.listdir(farm["devices"] / serial)
        assert left == ["benchmark_model"]


def test_a_phone_that_drops_out_leaves_the_pool_and_its_model_moves(
    ray_cluster, tmp_path
):
    farm = ray_cluster.farm
    logs: list[str] = []
    pool = RayLatencyPool(_phone_latency(farm), "phone", log=logs.append)
    unplug(farm["devices"], "SER2")
    try:
        paths = []
        for i in range(4):
            paths.append(str(tmp_path / f"m{i}.tflite"))
            with open(paths[-1], "wb") as handle:
                handle.write(b"TFL3 %d" % i)
        outcomes = pool.measure_all(paths)
        assert [u.serial for u in pool.units] == ["SER1"]
    finally:
        os.remove(farm["devices"] / "SER2.gone")
        pool.close()
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert {o.result.fingerprint.device_id for o in outcomes} == {"SER1"}
    assert len(logs) == 1 and logs[0].startswith("latency: phone SER2 on node ")
    assert "left the pool (LatencyError: adb push failed" in logs[0]
    assert logs[0].endswith("1 device(s) remain")


def test_phones_of_different_models_are_refused(ray_cluster):
    farm = ray_cluster.farm
    model_file = farm["devices"] / "SER2.model"
    model_file.write_text("Pixel 7\n")
    try:
        with pytest.raises(RayExecutorError) as info:
            RayLatencyPool(_phone_latency(farm), "phone")
    finally:
        model_file.unlink()
    message = str(info.value)
    assert message.startswith(
        "latency devices differ: phone:SER2 is [benchmark_model, Pixel 7, SER2, "
    )
    assert "] but phone:SER1 is [benchmark_model, Pixel 3, SER1, " in message


def test_a_latency_resource_no_node_declares_is_refused(ray_cluster):
    with pytest.raises(RayExecutorError) as info:
        RayLatencyPool(_phone_latency(ray_cluster.farm), "watch")
    assert str(info.value) == (
        "no node of the Ray cluster declares the latency resource 'watch': start "
        "the phone or latency hosts with ray start --resources='{\"watch\": N}' "
        "(or one '{\"watch:SERIAL\": 1}' per phone)"
    )


def test_trial_resources_no_node_offers_are_refused(ray_cluster):
    with pytest.raises(RayExecutorError) as info:
        RayExecutor("mnas.testing.ray_search:fake_trial", {"CPU": 1, "GPU": 1})
    assert str(info.value).startswith(
        "no node of the Ray cluster offers a trial's resources (CPU=1, GPU=1); "
        "the nodes offer: "
    )


def test_a_failing_trial_fails_at_once_and_a_crashing_worker_after_its_retries(
    ray_cluster, tmp_path
):
    logs: list[str] = []
    options = {"fail_trials": [0], "crash_trials": [1]}
    executor = RayExecutor(
        functools.partial(fake_trial, options),
        {"CPU": 1},
        trial_retries=1,
        log=logs.append,
    )
    for trial_id in range(3):
        executor.submit(trial_id, _task(trial_id, tmp_path))
    outcomes = _wait_for(executor, 3)
    assert outcomes[0].error.startswith(
        "FloatingPointError: loss became NaN in epoch 1 (fake trial 0)\nTraceback"
    )
    assert outcomes[0].node in {ray_cluster.trainer.node_id, ray_cluster.phones.node_id}
    assert outcomes[1].error.startswith(
        "trial 1 failed after 2 attempts: worker crashed (killed, out of memory or "
        "its node lost) (WorkerCrashedError: "
    )
    assert logs == [
        "trial 1: worker crashed (killed, out of memory or its node lost) on "
        "attempt 1; running it again (attempt 2 of 2)"
    ]
    assert outcomes[2].ok and os.path.exists(tmp_path / "trial-2.tflite")
    assert not os.path.exists(tmp_path / "trial-0.tflite")


def test_a_trial_past_its_timeout_is_cancelled_and_fails(ray_cluster, tmp_path):
    executor = RayExecutor(
        functools.partial(fake_trial, {"sleep_s": 60}), {"CPU": 1}, trial_timeout_s=2
    )
    executor.submit(0, _task(0, tmp_path))
    outcome = _wait_for(executor, 1)[0]
    assert outcome.error == "trial 0 timed out after 2 s; its Ray task was cancelled"
    assert executor.busy() == 0


def test_cancel_stops_running_trials(ray_cluster, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    executor = RayExecutor(
        functools.partial(fake_trial, {"sleep_s": 8, "marks": str(marks)}),
        {"CPU": 1},
    )
    for trial_id in range(2):
        executor.submit(trial_id, _task(trial_id, tmp_path))
    deadline = time.monotonic() + 60
    while len(list(marks.glob("*.start"))) < 2:
        assert time.monotonic() < deadline, "the trials never started"
        time.sleep(0.2)
    assert sorted(executor.cancel()) == [0, 1]
    assert executor.busy() == 0 and executor.poll(0.1) == []
    pids = [int(p.name.split(".")[1]) for p in marks.glob("*.start")]
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "a cancelled trial's worker lives on"
        time.sleep(0.2)
    assert list(marks.glob("*.end")) == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# Slow (waits for Ray to declare a node dead); retries after a lost worker stay
# covered fast by tests/search/workers/test_ray_executor.py.
@pytest.mark.slow
def test_a_node_lost_mid_trial_loses_and_duplicates_no_trial(ray_cluster, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    logs: list[str] = []
    config = search_config(str(tmp_path / "work"), 5)
    executor = RayExecutor(
        functools.partial(fake_trial, {"sleep_s": 3, "marks": str(marks)}),
        {"CPU": 1},
        log=logs.append,
    )
    search = _search(config, executor, FakeLatencyBackend(), logs)
    errors: list[BaseException] = []

    def run():
        try:
            search.run()
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    trainer = ray_cluster.trainer.node_id
    deadline = time.monotonic() + 120
    while not any(p.read_text() == trainer for p in marks.glob("*.start")):
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.1)
    ray_cluster.cluster.remove_node(ray_cluster.trainer)
    on_trainer = {
        int(p.name.split(".")[0])
        for p in marks.glob("*.start")
        if p.read_text() == trainer
    }
    try:
        thread.join(timeout=180)
        assert not thread.is_alive() and not errors, errors
    finally:
        ray_cluster.add_trainer()

    journal = Journal.open(str(tmp_path / "work" / "trials.jsonl"))
    latest = journal.latest()
    assert sorted(latest) == list(range(5))
    assert {r.status for r in latest.values()} == {"COMPLETED"}
    finished = Counter(r.trial_id for r in journal.records if r.finished)
    assert finished == Counter({trial_id: 1 for trial_id in range(5)})
    assert executor.retries >= 1
    retried = [line for line in logs if "running it again" in line]
    assert retried and all(" on attempt 1; " in line for line in retried)
    for line in retried:
        trial_id = int(line.split()[1].rstrip(":"))
        assert trial_id in on_trainer
        assert latest[trial_id].node == ray_cluster.phones.node_id


def _driver(work_dir, address, resume):
    args = [
        sys.executable,
        "-m",
        "mnas.testing.ray_search",
        str(work_dir),
        address,
        "8",
        "1.0",
    ]
    if resume:
        args.append("--resume")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _journal_statuses(work_dir) -> Counter:
    path = os.path.join(work_dir, "trials.jsonl")
    if not os.path.exists(path):
        return Counter()
    return Counter(r.status for r in Journal.open(path).latest().values())


@pytest.mark.slow
def test_interrupted_and_killed_drivers_resume_on_the_same_cluster(
    ray_cluster, tmp_path
):
    """Ctrl-C, then SIGKILL, of a driver running on the cluster; each time a
    new driver resumes; no trial is lost or evaluated twice."""
    address = ray_cluster.cluster.address
    work_dir = tmp_path / "work"
    for attempt, stop in enumerate((signal.SIGINT, signal.SIGKILL)):
        process = _driver(work_dir, address, resume=attempt > 0)
        before = _journal_statuses(work_dir)["COMPLETED"]
        deadline = time.monotonic() + 180
        while _journal_statuses(work_dir)["COMPLETED"] < before + 2:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the driver made no progress"
            time.sleep(0.1)
        os.kill(process.pid, stop)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode != 0
        if stop == signal.SIGINT:
            assert b"KeyboardInterrupt" in stderr

    final = _driver(work_dir, address, resume=True)
    _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr.decode()[-3000:]
    journal = Journal.open(str(work_dir / "trials.jsonl"))
    latest = journal.latest()
    assert sorted(latest) == list(range(8))
    assert {r.status for r in latest.values()} == {"COMPLETED"}
    finished = Counter(r.trial_id for r in journal.records if r.finished)
    assert finished == Counter({trial_id: 1 for trial_id in range(8)})
    proposals = Counter(r.proposal_id for r in latest.values())
    assert max(proposals.values()) == 1
    nodes = {r.node for r in latest.values()}
    assert None not in nodes and len(nodes) >= 1
