import os
import signal
import sys
import threading

import pytest

from mnas.search.workers.worker import set_parent_death_signal, watch_parent


def test_watchdog_fires_once_the_parent_pid_changes():
    parents = iter([100, 100, 100, 1])  # re-parented to init on the 4th look
    looks = []

    def getppid():
        looks.append(1)
        return next(parents)

    fired = threading.Event()
    thread = watch_parent(100, fired.set, interval_s=0.001, getppid=getppid)
    thread.join(timeout=30)
    assert fired.is_set() and len(looks) == 4


def test_watchdog_stays_quiet_while_the_parent_lives():
    fired = threading.Event()
    stop = threading.Event()

    def getppid():
        return 1 if stop.is_set() else os.getppid()

    thread = watch_parent(os.getppid(), fired.set, interval_s=0.001, getppid=getppid)
    thread.join(timeout=0.2)
    assert thread.is_alive() and not fired.is_set()
    stop.set()
    thread.join(timeout=30)
    assert fired.is_set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")
def test_parent_death_signal_is_set_in_the_kernel():
    import ctypes

    # Checked in a child, so this test process keeps no death signal.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        ok = set_parent_death_signal(signal.SIGKILL)
        libc = ctypes.CDLL(None, use_errno=True)
        value = ctypes.c_int(-1)
        libc.prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
        os.write(write, f"{ok} {value.value}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as handle:
        reply = handle.read()
    os.waitpid(pid, 0)
    assert reply == f"True {int(signal.SIGKILL)}"
