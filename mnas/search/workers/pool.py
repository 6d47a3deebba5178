"""Where candidates are evaluated: the ``Executor`` interface and two executors.

The search loop only talks to an ``Executor``: ``free_slots`` (how many trials
it can take now), ``submit`` (a JSON-safe task), ``poll`` (finished trials as
``Outcome``s) and ``close`` (stop everything still running). Any executor that
keeps this contract fits (a Ray cluster, a one-shot shared-weights evaluator).

``SubprocessPool``: one crashing, hanging or memory-hungry candidate takes down
only its worker: the pool reports that trial as failed (with the exit status
and the tail of the worker's log) and starts a fresh worker for the next one.
``InlinePool`` runs tasks in-process, for fakes in tests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A finished trial: its result dict, or the error that ended it; ``node``
    names the machine that ran it where the executor knows (a Ray node id)."""

    trial_id: int
    ok: bool
    result: dict[str, Any] | None = None
    error: str | None = None
    node: str | None = None


@runtime_checkable
class Executor(Protocol):
    """Evaluates trials somewhere; the search loop's only view of its workers.

    ``submit`` is only called while ``free_slots() > 0``; every submitted trial
    comes back exactly once from ``poll`` (ok or not) unless ``close`` ends it
    first; ``close`` leaves nothing running.
    """

    def free_slots(self) -> int: ...
    def submit(self, trial_id: int, task: dict[str, Any]) -> None: ...
    def poll(self, timeout: float = 1.0) -> list[Outcome]: ...
    def close(self) -> None: ...


def _tail(path: str, limit: int = 1500) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (killed: out of memory?)" if name == "SIGKILL" else ""
        return f"{name}{hint}"
    return f"exit code {returncode}"


class _Worker:
    def __init__(self, index: int, target: str, log_path: str, env: dict[str, str]):
        self.index = index
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the worker
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mnas.search.workers.worker", target],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buffer = b""
        self.trial_id: int | None = None
        self.started = 0.0

    def send(self, trial_id: int, task: dict[str, Any]) -> None:
        self.trial_id = trial_id
        self.started = time.monotonic()
        line = json.dumps({"trial_id": trial_id, "task": task}) + "\n"
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()

    def read_messages(self) -> tuple[list[dict[str, Any]], bool]:
        """Returns complete messages and whether stdout reached EOF."""
        eof = False
        while True:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            self.buffer += chunk
        messages = []
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.strip():
                messages.append(json.loads(line))
        return messages, eof

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self._log.close()


class SubprocessPool:
    """``num_workers`` long-lived workers running ``target`` (``module:function``)."""

    def __init__(
        self,
        target: str,
        num_workers: int,
        log_dir: str,
        trial_timeout_s: float = 3600.0,
        threads_per_worker: int | None = None,
    ):
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self._target = target
        self._log_dir = log_dir
        self._timeout = trial_timeout_s
        os.makedirs(log_dir, exist_ok=True)
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // num_workers)
        self._env = dict(os.environ)
        self._env.update(
            TF_CPP_MIN_LOG_LEVEL="2",
            TF_NUM_INTRAOP_THREADS=str(threads),
            TF_NUM_INTEROP_THREADS="1",
            PYTHONUNBUFFERED="1",
        )
        self._slots: list[_Worker | None] = [None] * num_workers
        self._selector = selectors.DefaultSelector()

    def free_slots(self) -> int:
        return sum(1 for w in self._slots if w is None or w.trial_id is None)

    def busy(self) -> int:
        return len(self._slots) - self.free_slots()

    def submit(self, trial_id: int, task: dict[str, Any]) -> None:
        for index, worker in enumerate(self._slots):
            if worker is None:
                worker = self._start(index)
            if worker.trial_id is None:
                worker.send(trial_id, task)
                return
        raise RuntimeError("no free worker: check free_slots() before submit()")

    def _start(self, index: int) -> _Worker:
        log_path = os.path.join(self._log_dir, f"worker-{index}.log")
        worker = _Worker(index, self._target, log_path, self._env)
        self._selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)
        self._slots[index] = worker
        return worker

    def _retire(self, worker: _Worker) -> None:
        self._selector.unregister(worker.proc.stdout)
        worker.kill()
        self._slots[worker.index] = None

    def poll(self, timeout: float = 1.0) -> list[Outcome]:
        """Waits up to ``timeout`` seconds; returns finished trials."""
        outcomes: list[Outcome] = []
        ready = self._selector.select(timeout) if self.busy() else []
        for key, _ in ready:
            worker: _Worker = key.data
            messages, eof = worker.read_messages()
            for message in messages:
                if "trial_id" not in message or message["trial_id"] != worker.trial_id:
                    continue  # the ready banner
                outcomes.append(
                    Outcome(
                        worker.trial_id,
                        bool(message["ok"]),
                        message.get("result"),
                        message.get("error"),
                    )
                )
                worker.trial_id = None
            if eof:
                returncode = worker.proc.wait()
                if worker.trial_id is not None:
                    outcomes.append(
                        Outcome(
                            worker.trial_id,
                            False,
                            error=(
                                f"worker process died ({_describe_exit(returncode)}) "
                                f"while evaluating trial {worker.trial_id}; "
                                f"log tail ({worker.log_path}):\n{_tail(worker.log_path)}"
                            ),
                        )
                    )
                self._retire(worker)
        now = time.monotonic()
        for worker in list(self._slots):
            if worker is None or worker.trial_id is None:
                continue
            if now - worker.started > self._timeout:
                outcomes.append(
                    Outcome(
                        worker.trial_id,
                        False,
                        error=(
                            f"trial {worker.trial_id} timed out after "
                            f"{self._timeout:.0f} s; worker killed"
                        ),
                    )
                )
                self._retire(worker)
        return outcomes

    def close(self) -> None:
        for worker in self._slots:
            if worker is not None:
                self._retire(worker)
        self._selector.close()


class InlinePool:
    """Same interface, evaluates in this process (fakes in tests)."""

    def __init__(
        self, evaluate: Callable[[dict[str, Any]], dict[str, Any]], num_workers: int = 1
    ):
        self._evaluate = evaluate
        self._capacity = num_workers
        self._queue: list[tuple[int, dict[str, Any]]] = []

    def free_slots(self) -> int:
        return self._capacity - len(self._queue)

    def busy(self) -> int:
        return len(self._queue)

    def submit(self, trial_id: int, task: dict[str, Any]) -> None:
        self._queue.append((trial_id, task))

    def poll(self, timeout: float = 0.0) -> list[Outcome]:
        del timeout
        outcomes = []
        for trial_id, task in self._queue:
            try:
                outcomes.append(Outcome(trial_id, True, self._evaluate(task)))
            except Exception as error:  # noqa: BLE001 - becomes a FAILED trial
                outcomes.append(
                    Outcome(trial_id, False, error=f"{type(error).__name__}: {error}")
                )
        self._queue.clear()
        return outcomes

    def close(self) -> None:
        self._queue.clear()
