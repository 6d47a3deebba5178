"""Stopping a search: SIGKILL, SIGTERM and Ctrl-C of the search process, with
real worker processes (``mnas.testing.search_driver --subprocess``).

A killed search must leave no worker behind that could write into the work
directory (a resume started at once would train the same trial twice); a
stopped one exits with one line, keeps its interrupted trials RUNNING, and a
resume re-runs exactly those.
"""

import io
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from mnas.search.trial import Journal
from mnas.testing.search_driver import driver_command
from mnas.testing.worker_fakes import read_events

NUM_TRIALS = 5
DEADLINE_S = 120  # for a process to start up on a loaded machine
#: TensorFlow's C++ logging, printed before Python's logging is set up.
_TF_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] |WARNING: All log messages before)"
)


def _start(work_dir, events, sleep_s, **popen):
    return subprocess.Popen(
        driver_command(work_dir, NUM_TRIALS, sleep_s, events=events),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody has reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _children(pid: int) -> set[int]:
    """The child processes of ``pid`` (Linux; empty elsewhere)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return {int(child) for child in handle.read().split()}
    except OSError:
        return set()


def _wait_gone(pids, timeout_s=10.0) -> list[int]:
    """The pids still alive after up to ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _wait_busy(process, events):
    """The first event of a worker that started a trial (waits for it)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        started = [e for e in read_events(events) if e["event"] == "start"]
        if started:
            return started[0]
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode()[-3000:])
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("no worker started a trial")
        time.sleep(0.05)


def _snapshot(folder):
    """Every file and folder under ``folder`` with its size and mtime."""
    listing = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            stat = os.lstat(path)
            listing[os.path.relpath(path, folder)] = (stat.st_size, stat.st_mtime_ns)
    return listing


def _stderr_lines(stderr: bytes) -> list[str]:
    """What the process itself wrote on stderr (TensorFlow's C++ log skipped)."""
    lines = stderr.decode(errors="replace").splitlines()
    return [line for line in lines if line.strip() and not _TF_LOG_LINE.match(line)]


def _resume_in_process(work_dir) -> list[int]:
    """Resumes the driver's search here, in-process; returns the ids of the
    trials it evaluated, in order."""
    from mnas.search.runner import Search
    from mnas.search.workers.pool import InlinePool
    from mnas.testing.fakes import FakeLatencyBackend, fake_evaluate
    from mnas.testing.search_driver import FAIL_TRIALS, NUM_WORKERS, driver_config

    evaluated = []

    def evaluate(task):
        evaluated.append(task["trial_id"])
        return fake_evaluate({**task, "fake": {"fail_trials": list(FAIL_TRIALS)}})

    Search(
        driver_config(str(work_dir), NUM_TRIALS),
        InlinePool(evaluate, NUM_WORKERS),
        FakeLatencyBackend(),
        resume=True,
        log=lambda message: None,
        progress_stream=io.StringIO(),
    ).run()
    return evaluated


def _journal(work_dir):
    return Journal.open(os.path.join(work_dir, "trials.jsonl"))


def test_sigkill_of_the_search_kills_its_busy_worker_before_it_writes(tmp_path):
    work_dir, events = tmp_path / "work", tmp_path / "events.jsonl"
    sleep_s = 10.0  # the busy worker's trial: far longer than it may survive
    process = _start(work_dir, events, sleep_s)
    busy = _wait_busy(process, events)
    children = _children(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = _snapshot(work_dir)
    worker_pids = children | {e["pid"] for e in read_events(events)}
    assert busy["pid"] in worker_pids

    assert _wait_gone(worker_pids, timeout_s=5.0) == []
    # Gone, so it can write nothing more; and it wrote nothing in between.
    assert _snapshot(work_dir) == before
    assert not (work_dir / "models" / f"trial-{busy['trial_id']:05d}.tflite").exists()
    assert [e for e in read_events(events) if e["event"] == "end"] == []
    assert _journal(work_dir).latest()[busy["trial_id"]].status == "RUNNING"


def _stop_and_resume(tmp_path, send, status, message):
    work_dir, events = tmp_path / "work", tmp_path / "events.jsonl"
    process = _start(work_dir, events, 2.0, start_new_session=True)
    busy = _wait_busy(process, events)
    send(process.pid)
    stdout, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == status, stderr.decode()[-3000:]
    assert _stderr_lines(stderr) == [message]

    latest = _journal(work_dir).latest()
    assert "FAILED" not in [r.status for r in latest.values()]
    running = sorted(t for t, r in latest.items() if r.status == "RUNNING")
    started = sorted({e["trial_id"] for e in read_events(events)})
    assert busy["trial_id"] in started and set(started) <= set(running)
    ids = ", ".join(map(str, running))
    said = (
        f"trials {ids} stay RUNNING in the journal; a resume re-runs them"
        if len(running) > 1
        else f"trial {ids} stays RUNNING in the journal; a resume re-runs it"
    )
    assert f"interrupted: {said}" in stdout.decode()
    assert _wait_gone({e["pid"] for e in read_events(events)}) == []

    done_before = {t for t, r in latest.items() if r.finished}
    evaluated = _resume_in_process(work_dir)
    journal = _journal(work_dir)
    latest = journal.latest()
    assert sorted(latest) == list(range(NUM_TRIALS))
    assert all(record.finished for record in latest.values())
    finished = Counter(r.trial_id for r in journal.records if r.finished)
    assert finished == Counter(range(NUM_TRIALS))  # each finished exactly once
    assert max(Counter(r.proposal_id for r in latest.values()).values()) == 1
    # The interrupted trials are evaluated again, each trial once, and no
    # trial that had finished before the stop.
    assert sorted(evaluated) == sorted(set(range(NUM_TRIALS)) - done_before)
    assert set(running) <= set(evaluated)


def test_sigterm_stops_like_ctrl_c_and_a_resume_reruns_the_interrupted_trials(
    tmp_path,
):
    _stop_and_resume(
        tmp_path,
        lambda pid: os.kill(pid, signal.SIGTERM),
        128 + signal.SIGTERM,
        "search_driver: terminated by SIGTERM",
    )


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_stops_without_failing_the_running_trials(
    tmp_path,
):
    # A terminal sends Ctrl-C to the whole group: the workers ignore it, so
    # the search does not see them die and record their trials as FAILED.
    _stop_and_resume(
        tmp_path,
        lambda pid: os.killpg(pid, signal.SIGINT),
        130,
        "search_driver: interrupted",
    )


_IDLE_PARENT = """
import subprocess, sys, time
worker = subprocess.Popen(
    [sys.executable, "-m", "mnas.search.workers.worker",
     "mnas.testing.fakes:fake_evaluate"],
    stdin=0 if sys.argv[1] == "shared" else subprocess.PIPE,
    stdout=subprocess.PIPE,
)
worker.stdout.readline()  # the ready banner: the worker waits for a task
print(worker.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("stdin", ["own", "shared"])
def test_an_idle_worker_exits_when_its_parent_is_killed(stdin):
    # "shared": the worker's stdin stays open (this test holds it), so no
    # end-of-file tells it that its parent died.
    parent = subprocess.Popen(
        [sys.executable, "-c", _IDLE_PARENT, stdin],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        worker_pid = int(parent.stdout.readline())
        assert _alive(worker_pid)
        parent.kill()
        parent.wait()
        assert _wait_gone([worker_pid]) == []
    finally:
        parent.kill()
        parent.wait()
        parent.stdin.close()
        parent.stdout.close()


def test_a_worker_started_for_a_parent_that_is_gone_exits_at_once():
    # The parent pid it is given is not its parent: its parent died before
    # the parent-death signal was set (or it was started wrongly).
    from mnas.search.workers.worker import ORPHANED_EXIT

    other = 1 if os.getpid() != 1 else 2
    worker = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnas.search.workers.worker",
            "mnas.testing.fakes:fake_evaluate",
            str(other),
        ],
        stdin=subprocess.PIPE,
        capture_output=True,
        timeout=DEADLINE_S,
    )
    assert worker.returncode == ORPHANED_EXIT
    assert worker.stdout == b""  # no ready banner: it never took a task


def test_an_interrupted_run_keeps_its_trials_running_closes_and_unlocks(tmp_path):
    from mnas.io.work_dir import lock_work_dir
    from mnas.search.runner import Search
    from mnas.search.workers.pool import InlinePool
    from mnas.testing.fakes import FakeLatencyBackend, fake_evaluate
    from mnas.testing.search_driver import driver_config

    class StoppedPool(InlinePool):
        """Finishes the first round of trials, then Ctrl-C arrives."""

        polls = 0
        closed = False

        def poll(self, timeout=0.0):
            self.polls += 1
            if self.polls == 2:
                raise KeyboardInterrupt
            return super().poll(timeout)

        def close(self):
            self.closed = True
            super().close()

    pool = StoppedPool(fake_evaluate, 2)
    messages = []
    search = Search(
        driver_config(str(tmp_path), NUM_TRIALS),
        pool,
        FakeLatencyBackend(),
        log=messages.append,
        progress_stream=io.StringIO(),
    )
    with pytest.raises(KeyboardInterrupt):
        search.run()
    statuses = {t: r.status for t, r in _journal(tmp_path).latest().items()}
    assert statuses == {0: "COMPLETED", 1: "COMPLETED", 2: "RUNNING", 3: "RUNNING"}
    assert messages == [
        "interrupted: trials 2, 3 stay RUNNING in the journal; a resume re-runs them"
    ]
    assert pool.closed
    lock_work_dir(str(tmp_path)).release()  # the work directory is free again
    assert (tmp_path / "best.json").exists()  # outputs of the finished trials
