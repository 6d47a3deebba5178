"""Kills a running search with SIGKILL at random moments, resumes it, and
checks that no trial is lost or duplicated and the controller stayed in step."""

import os
import random
import signal
import subprocess
import time
from collections import Counter

import pytest

from mnas.search.trial import Journal
from mnas.testing.search_driver import driver_command, driver_config

NUM_TRIALS = 10
BATCH_SIZE = 3  # as in mnas/testing/search_driver.py


def _start(work_dir, resume):
    return subprocess.Popen(
        driver_command(work_dir, NUM_TRIALS, 0.15, resume=resume),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _driver_search(work_dir):
    """The driver's search, resumed in this process (nothing is evaluated)."""
    from mnas.search.runner import Search
    from mnas.search.workers.pool import InlinePool
    from mnas.testing.fakes import FakeLatencyBackend

    return Search(
        driver_config(work_dir, NUM_TRIALS),
        InlinePool(lambda t: {}, 2),
        FakeLatencyBackend(),
        resume=True,
    )


def _finished_count(work_dir):
    path = os.path.join(work_dir, "trials.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as handle:
        return handle.read().count(b'"status": "COMPLETED"') + 0


# Slow (repeated kills of a real search); the fast suite covers a SIGKILL resume in
# tests/search/test_signals.py and replay in tests/search/test_oracle.py.
@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    rng = random.Random(20261127)
    work_dir = str(tmp_path)
    kills = 0
    for attempt in range(4):
        process = _start(work_dir, resume=attempt > 0)
        # Wait until the search is producing trials, then kill at a random moment
        # (a start imports TensorFlow and traces the controller: minutes on a
        # loaded two-core machine).
        deadline = time.monotonic() + 300
        start_count = _finished_count(work_dir)
        while _finished_count(work_dir) == start_count and process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError("search made no progress")
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if process.poll() is not None:
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
    assert kills >= 3, "the search finished before it could be killed three times"

    final = _start(work_dir, resume=True)
    _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr.decode()[-3000:]

    journal = Journal.open(os.path.join(work_dir, "trials.jsonl"))
    latest = journal.latest()
    assert sorted(latest) == list(range(NUM_TRIALS))
    finished = Counter(r.trial_id for r in journal.records if r.finished)
    assert finished == Counter({trial_id: 1 for trial_id in range(NUM_TRIALS)})
    assert all(r.finished for r in latest.values())
    proposals = Counter(r.proposal_id for r in latest.values())
    assert max(proposals.values()) == 1  # no proposal evaluated twice

    # The controller restored from its checkpoint counts exactly the completed batches.
    search = _driver_search(work_dir)
    search.close()
    completed = sum(r.status == "COMPLETED" for r in latest.values())
    assert completed == NUM_TRIALS - 1  # trial 4 fails by design
    summary = search.controller.state_summary()
    assert summary["num_rewards"] == completed
    assert summary["num_failed"] == 1
    assert search.controller.num_updates == completed // BATCH_SIZE
    assert search.controller.num_pending == 0


def test_a_second_search_is_refused_while_one_runs_and_admitted_after_it_dies(
    tmp_path,
):
    from mnas.io.lock import LockedError

    work_dir = str(tmp_path)
    process = _start(work_dir, resume=False)
    try:
        deadline = time.monotonic() + 90
        while not os.path.exists(os.path.join(work_dir, "trials.jsonl")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        try:
            _driver_search(work_dir)
        except LockedError as error:
            assert f"is in use by another process (pid {process.pid})" in str(error)
        else:
            raise AssertionError("a second search claimed a running search's dir")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    _driver_search(work_dir).close()  # the dead process held nothing
