"""SIGKILL of a shared search (real micro supernet, in a subprocess) at
random moments, then --resume: no trial lost or duplicated, no proposal
evaluated twice, the verification done. (That a resumed search continues
exactly as an uninterrupted one is checked with fake weights in
test_loop.py, and a replayed weight step in test_weights.py.)"""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from mnas.search.trial import Journal

NUM_TRIALS = 16


def _start(work_dir, resume):
    command = [sys.executable, "-m", "mnas.testing.shared", work_dir, str(NUM_TRIALS)]
    return subprocess.Popen(
        command + (["--resume"] if resume else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finished(work_dir):
    path = os.path.join(work_dir, "trials.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as handle:
        return handle.read().count(b'"status": "COMPLETED"')


@pytest.mark.slow
def test_sigkill_then_resume_loses_and_duplicates_no_trial(tmp_path):
    rng = random.Random(20261130)
    work_dir = str(tmp_path / "killed")
    kills = 0
    for attempt in range(3):
        process = _start(work_dir, resume=attempt > 0)
        count = _finished(work_dir)
        deadline = time.monotonic() + 600
        while _finished(work_dir) == count and process.poll() is None:
            assert time.monotonic() < deadline, "the search made no progress"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 3.0))
        if process.poll() is not None:
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
    assert kills >= 2, "the search finished before it could be killed twice"
    final = _start(work_dir, resume=True)
    _, stderr = final.communicate(timeout=900)
    assert final.returncode == 0, stderr.decode()[-3000:]

    journal = Journal.open(os.path.join(work_dir, "trials.jsonl"))
    finished = Counter(r.trial_id for r in journal.records if r.finished)
    total = NUM_TRIALS + 2  # and the two verifications
    assert finished == Counter({trial_id: 1 for trial_id in range(total)})
    latest = journal.latest()
    assert all(r.status == "COMPLETED" for r in latest.values())
    proposals = Counter(
        r.proposal_id for r in latest.values() if r.proposal_id is not None
    )
    assert sorted(proposals) == list(range(NUM_TRIALS - 4))  # after the RL delay
    assert max(proposals.values()) == 1
    phases = Counter(r.phase for r in latest.values())
    assert phases == Counter({"warmup": 4, "search": NUM_TRIALS - 4, "verify": 2})
