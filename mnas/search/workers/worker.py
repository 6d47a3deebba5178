"""A worker process of the search: evaluates candidates sent on stdin.

Protocol: one JSON object per line on stdin, ``{"trial_id": N, "task": {...}}``;
one JSON line per task on the original stdout, ``{"trial_id": N, "ok": true,
"result": {...}}`` or ``{"ok": false, "error": "...", "kind": "..."}``.
Anything else the process prints goes to stderr (a pipe the search process
copies into the worker's log), so library output can never corrupt the
protocol.

A worker dies with its parent, the search process: a worker that outlived a
killed search would go on training and could race the resumed search for the
same trial. On Linux the kernel kills it (``PR_SET_PDEATHSIG``); everywhere a
watchdog thread compares ``os.getppid()`` with the parent's pid and exits at
once when they differ (the parent died and the worker was re-parented). An
idle worker also ends on end-of-file on stdin. Ctrl-C in a terminal reaches
the whole process group; the worker ignores it and leaves the stopping to the
search process, which then kills it.

Usage: ``python -m mnas.search.workers.worker MODULE:FUNCTION [PARENT_PID]``.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

#: ``prctl`` option that sets the signal sent when the parent dies (linux/prctl.h).
_PR_SET_PDEATHSIG = 1
#: How often the watchdog looks at the parent's pid.
WATCHDOG_INTERVAL_S = 0.2
#: Exit status of a worker that found its parent gone (nobody waits for it).
ORPHANED_EXIT = 75


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Asks the Linux kernel to send ``signum`` to this process when its parent
    thread exits; returns False where that is not available.

    The signal follows the *thread* that started this process: the pool must
    start workers from a thread that lives as long as the pool (the search
    loop's main thread does).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(
    parent_pid: int,
    on_orphaned: Callable[[], None],
    interval_s: float = WATCHDOG_INTERVAL_S,
    getppid: Callable[[], int] = os.getppid,
) -> threading.Thread:
    """Starts a daemon thread that calls ``on_orphaned`` once ``getppid()`` is
    no longer ``parent_pid``, then ends."""

    def watch() -> None:
        while getppid() == parent_pid:
            time.sleep(interval_s)
        on_orphaned()

    thread = threading.Thread(target=watch, name="parent-watchdog", daemon=True)
    thread.start()
    return thread


def _orphaned() -> None:
    # No cleanup, no flushing: nothing may be written once the parent is gone.
    os._exit(ORPHANED_EXIT)


def die_with_parent(parent_pid: int) -> None:
    """Makes this process end as soon as ``parent_pid`` (its parent) is gone.

    The parent-death signal is set first, then the parent is checked: had it
    died between starting us and ``prctl``, nobody would send the signal.
    """
    set_parent_death_signal()
    if os.getppid() != parent_pid:
        _orphaned()
    watch_parent(parent_pid, _orphaned)


def _load(target: str):
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise SystemExit(f"worker target must be MODULE:FUNCTION, got {target!r}")
    return getattr(importlib.import_module(module_name), function_name)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or (len(argv) == 3 and not argv[2].isdigit()):
        print(
            "usage: python -m mnas.search.workers.worker MODULE:FUNCTION [PARENT_PID]",
            file=sys.stderr,
        )
        return 2
    die_with_parent(int(argv[2]) if len(argv) == 3 else os.getppid())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints go to the log
    sys.stdout = sys.stderr
    evaluate = _load(argv[1])
    protocol.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        trial_id = message["trial_id"]
        print(f"--- trial {trial_id}", file=sys.stderr, flush=True)
        try:
            result = evaluate(message["task"])
            reply = {"trial_id": trial_id, "ok": True, "result": result}
        except Exception as error:  # noqa: BLE001 - reported as a FAILED trial
            traceback.print_exc()
            reply = {
                "trial_id": trial_id,
                "ok": False,
                "kind": type(error).__name__,
                "error": f"{type(error).__name__}: {error}",
            }
        protocol.write(json.dumps(reply) + "\n")
        sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
