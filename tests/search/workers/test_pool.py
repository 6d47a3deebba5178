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
