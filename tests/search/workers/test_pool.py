import json
import os
import signal
import time

import pytest

from mnas.search.workers.pool import InlinePool, SubprocessPool
from mnas.search_space import MNASNET_SPACE
from mnas.testing.fakes import fake_evaluate


def _task(tmp_path, trial_id, **fake):
    spec = MNASNET_SPACE.decode(MNASNET_SPACE.sample(trial_id))
    return {
        "trial_id": trial_id,
        "arch": spec.to_dict(),
        "tflite_path": str(tmp_path / f"trial-{trial_id}.tflite"),
        "fake": fake,
    }


def _drain(pool, expected, timeout=120):
    outcomes = {}
    deadline = time.monotonic() + timeout
    while len(outcomes) < expected:
        assert time.monotonic() < deadline, (
            f"only {len(outcomes)} of {expected} finished"
        )
        for outcome in pool.poll(0.5):
            outcomes[outcome.trial_id] = outcome
    return outcomes


def test_crash_fails_only_its_trial_and_the_worker_is_replaced(tmp_path):
    pool = SubprocessPool("mnas.testing.fakes:fake_evaluate", 2, str(tmp_path / "logs"))
    try:
        pool.submit(0, _task(tmp_path, 0, crash_trials=[0]))
        pool.submit(1, _task(tmp_path, 1))
        outcomes = _drain(pool, 2)
        assert outcomes[1].ok and 0.3 <= outcomes[1].result["accuracy"] <= 0.9
        assert not outcomes[0].ok
        assert "worker process died (exit code 11) while evaluating trial 0" in (
            outcomes[0].error
        )
        assert "--- trial 0" in outcomes[0].error  # the log tail comes along
        assert pool.free_slots() == 2
        pool.submit(2, _task(tmp_path, 2))  # a fresh worker takes over
        assert _drain(pool, 1)[2].ok
    finally:
        pool.close()


def test_exception_is_reported_with_its_type(tmp_path):
    pool = SubprocessPool("mnas.testing.fakes:fake_evaluate", 1, str(tmp_path / "logs"))
    try:
        pool.submit(4, _task(tmp_path, 4, fail_trials=[4]))
        outcome = _drain(pool, 1)[4]
        assert not outcome.ok
        assert (
            outcome.error
            == "FloatingPointError: loss became NaN in epoch 1 (fake trial 4)"
        )
    finally:
        pool.close()


def test_timeout_kills_the_worker(tmp_path):
    pool = SubprocessPool(
        "mnas.testing.fakes:fake_evaluate",
        1,
        str(tmp_path / "logs"),
        trial_timeout_s=3.0,
    )
    try:
        pool.submit(7, _task(tmp_path, 7, sleep_s=60))
        started = time.monotonic()
        outcome = _drain(pool, 1)[7]
        assert time.monotonic() - started < 30
        assert (
            not outcome.ok
            and outcome.error == "trial 7 timed out after 3 s; worker killed"
        )
    finally:
        pool.close()


def test_inline_pool_matches_the_interface(tmp_path):
    pool = InlinePool(fake_evaluate, 2)
    pool.submit(0, _task(tmp_path, 0))
    pool.submit(1, _task(tmp_path, 1, fail_trials=[1]))
    assert pool.free_slots() == 0
    outcomes = {o.trial_id: o for o in pool.poll()}
    assert outcomes[0].ok and not outcomes[1].ok
    assert pool.free_slots() == 2


def test_bad_worker_count(tmp_path):
    with pytest.raises(ValueError, match="num_workers must be >= 1, got 0"):
        SubprocessPool("mnas.testing.fakes:fake_evaluate", 0, str(tmp_path))


def _env_pool(tmp_path, monkeypatch, num_workers=1, **options):
    from mnas.testing.worker_fakes import ENV_FAKE_TARGET, OPTIONS_VARIABLE

    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(OPTIONS_VARIABLE, json.dumps({**options, "events": str(events)}))
    pool = SubprocessPool(
        ENV_FAKE_TARGET,
        num_workers,
        str(tmp_path / "logs"),
        staging_dir=str(tmp_path / "staging"),
    )
    return pool, str(events)


def _wait_started(events, count=1, timeout=120):
    from mnas.testing.worker_fakes import read_events

    deadline = time.monotonic() + timeout
    while True:
        started = [e for e in read_events(events) if e["event"] == "start"]
        if len(started) >= count:
            return started
        assert time.monotonic() < deadline, "no worker started its trial"
        time.sleep(0.05)


def _staged_files(tmp_path):
    return sorted(
        os.path.relpath(os.path.join(root, name), tmp_path / "staging")
        for root, _, names in os.walk(tmp_path / "staging")
        for name in names
    )


def test_the_worker_writes_outside_the_destination_and_poll_moves_it_in(
    tmp_path, monkeypatch
):
    out = tmp_path / "work" / "models"
    pool, _ = _env_pool(tmp_path, monkeypatch, fail_trials=[1])
    try:
        ok_task = {**_task(tmp_path, 0), "tflite_path": str(out / "trial-0.tflite")}
        pool.submit(0, ok_task)
        outcome = _drain(pool, 1)[0]
        assert outcome.ok
        assert outcome.result["tflite_path"] == str(out / "trial-0.tflite")
        with open(out / "trial-0.tflite", encoding="utf-8") as handle:
            assert "actions" in json.load(handle)  # what the fake wrote
        assert _staged_files(tmp_path) == []  # moved, not copied

        failing = {**_task(tmp_path, 1), "tflite_path": str(out / "trial-1.tflite")}
        pool.submit(1, failing)
        assert not _drain(pool, 1)[1].ok
        assert not (out / "trial-1.tflite").exists()
        assert sorted(os.listdir(out)) == ["trial-0.tflite"]
    finally:
        pool.close()
    assert not (tmp_path / "staging").exists() or os.listdir(tmp_path / "staging") == []


def test_a_worker_is_told_a_staging_path_outside_the_work_dir(tmp_path, monkeypatch):
    from mnas.testing.worker_fakes import read_events

    final = tmp_path / "work" / "trial-3.tflite"
    pool, events = _env_pool(tmp_path, monkeypatch)
    try:
        pool.submit(3, {**_task(tmp_path, 3), "tflite_path": str(final)})
        assert _drain(pool, 1)[3].ok
    finally:
        pool.close()
    told = {e["tflite_path"] for e in read_events(events)}
    assert len(told) == 1
    staged = told.pop()
    assert os.path.commonpath([staged, str(tmp_path / "staging")]) == str(
        tmp_path / "staging"
    )
    assert final.exists()
    log = (tmp_path / "logs" / "worker-0.log").read_text()
    assert "--- trial 3" in log  # stderr reached the log through this process


def test_a_killed_trial_leaves_no_staged_file(tmp_path, monkeypatch):
    pool, events = _env_pool(tmp_path, monkeypatch, sleep_s=60)
    try:
        pool.submit(5, _task(tmp_path, 5))
        _wait_started(events)
        assert len(_staged_files(tmp_path)) <= 1
    finally:
        pool.close()
    assert not (tmp_path / "trial-5.tflite").exists()
    assert _staged_files(tmp_path) == []


def test_a_worker_ignores_ctrl_c_and_finishes_its_trial(tmp_path, monkeypatch):
    # Ctrl-C in a terminal reaches the whole process group; stopping is the
    # search process's call, so the trial must not die as FAILED meanwhile.
    pool, events = _env_pool(tmp_path, monkeypatch, sleep_s=1.0)
    try:
        pool.submit(2, _task(tmp_path, 2))
        worker_pid = _wait_started(events)[0]["pid"]
        os.kill(worker_pid, signal.SIGINT)
        outcome = _drain(pool, 1)[2]
        assert outcome.ok, outcome.error
        assert pool.worker_pids() == [worker_pid]
    finally:
        pool.close()


def test_close_kills_busy_workers_and_can_be_called_twice(tmp_path, monkeypatch):
    pool, events = _env_pool(tmp_path, monkeypatch, num_workers=2, sleep_s=60)
    pool.submit(0, _task(tmp_path, 0))
    pool.submit(1, _task(tmp_path, 1))
    pids = [e["pid"] for e in _wait_started(events, count=2)]
    pool.close()
    pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped by close
    assert pool.worker_pids() == []
