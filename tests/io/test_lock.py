"""The run lock: a second claimer is refused naming the holder's pid; the lock
goes away with the holder, however it ends."""

import os
import signal
import subprocess
import sys

import pytest

from mnas.io.lock import FileLock, LockedError

HOLDER = """
import sys
from mnas.io.lock import FileLock
lock = FileLock(sys.argv[1], "the test table").acquire()
print("held", flush=True)
sys.stdin.read()  # until the test closes stdin
"""


def _holder(path):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "held\n"
    return process


def test_a_second_process_is_refused_naming_the_holder_pid(tmp_path):
    path = tmp_path / "t.lock"
    holder = _holder(path)
    try:
        with pytest.raises(LockedError) as info:
            FileLock(path, "the test table").acquire()
        assert str(info.value) == (
            f"the test table is in use by another process (pid {holder.pid}); "
            f"wait for it to finish or stop it (lock file {path})"
        )
        assert info.value.pid == holder.pid
    finally:
        holder.stdin.close()
        holder.wait()
    with FileLock(path, "the test table") as lock:  # released on exit
        assert lock.held
        assert path.read_text() == f"{os.getpid()}\n"


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    path = tmp_path / "t.lock"
    holder = _holder(path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert path.read_text() == f"{holder.pid}\n"  # the dead holder's pid is left
    with FileLock(path, "x") as lock:
        assert lock.held
        assert path.read_text() == f"{os.getpid()}\n"


def test_two_locks_in_one_process_exclude_each_other_until_released(tmp_path):
    path = tmp_path / "sub" / "t.lock"
    first = FileLock(path, "work directory w").acquire()
    with pytest.raises(LockedError, match=rf"\(pid {os.getpid()}\)"):
        FileLock(path, "work directory w").acquire()
    first.release()
    assert not first.held
    FileLock(path, "work directory w").acquire().release()
