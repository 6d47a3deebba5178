"""Where candidates are evaluated: the ``Executor`` interface and two executors.

The search loop only talks to an ``Executor``: ``free_slots`` (how many trials
it can take now), ``submit`` (a JSON-safe task), ``poll`` (finished trials as
``Outcome``s) and ``close`` (stop everything still running). Any executor that
keeps this contract fits (a Ray cluster, a one-shot shared-weights evaluator).

``SubprocessPool``: one crashing, hanging or memory-hungry candidate takes down
only its worker: the pool reports that trial as failed (with the exit status
and the tail of the worker's log) and starts a fresh worker for the next one.
``InlinePool`` runs tasks in-process, for fakes in tests.

The search process owns the work directory; a ``SubprocessPool`` worker
never writes into it. A task's output files (``tflite_path``) are redirected
to a private staging folder outside the work directory and moved into place
by this process when the worker reports the trial done; the worker's stderr
reaches its log through a pipe. Workers die with the search process
(``mnas.search.workers.worker``), so a killed search leaves nothing running
that could write a model for a trial that its resume runs again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from mnas.io.atomic import write_bytes_atomic

#: Task keys that name an output file of the evaluation.
OUTPUT_KEYS = ("tflite_path",)
#: Size asked for a worker's stderr pipe, so a chatty worker rarely waits for
#: the search process to copy its log (Linux; elsewhere the default stays).
_LOG_PIPE_BYTES = 1 << 20


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
    first. The search process owns the work directory: the output files a task
    names (``tflite_path``) are in place when ``poll`` returns the trial, and
    an evaluation running elsewhere must never write there itself, nor outlive
    the search process. ``close`` leaves nothing running (the search calls it
    when it ends, is interrupted or fails), and may be called twice.
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


def _read_available(fd: int) -> tuple[bytes, bool]:
    """What a non-blocking pipe holds now, and whether it reached end-of-file."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return b"".join(chunks), False
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


@dataclasses.dataclass(frozen=True)
class StagedFile:
    """An output file: where the worker writes it, where it belongs."""

    staged: str
    final: str


class Staging:
    """A private folder (outside the work directory) for workers' output files.

    ``stage`` points a task's output keys at this folder; ``deliver`` moves
    the files a finished trial wrote to where the task asked for them (write,
    fsync, rename: the folder may be on another file system); ``discard``
    drops those of a failed or cancelled trial. A killed search leaves at most
    one partial file per worker here, in the system's temporary folder.
    """

    def __init__(self, keys: Sequence[str] = OUTPUT_KEYS, root: str | None = None):
        self.keys = tuple(keys)
        self._root = root
        self._made: str | None = None

    def _folder(self) -> str:
        if self._made is None:
            if self._root is not None:
                os.makedirs(self._root, exist_ok=True)
            self._made = tempfile.mkdtemp(prefix="mnas-outputs-", dir=self._root)
        os.makedirs(self._made, exist_ok=True)  # a temp cleaner may have removed it
        return self._made

    def stage(
        self, trial_id: int, task: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[StagedFile]]:
        task = dict(task)
        files = []
        for key in self.keys:
            final = task.get(key)
            if not isinstance(final, str):
                continue
            name = f"trial-{trial_id}-{key}-{os.path.basename(final)}"
            staged = StagedFile(os.path.join(self._folder(), name), final)
            task[key] = staged.staged
            files.append(staged)
        return task, files

    @staticmethod
    def deliver(files: Sequence[StagedFile], result: Any) -> Any:
        """Moves the staged files that exist into place; returns ``result``
        with the staged paths in its top level replaced by the final ones.
        Raises OSError when a file cannot be moved."""
        renamed = {}
        for file in files:
            if not os.path.exists(file.staged):
                continue  # an evaluator that writes no model
            with open(file.staged, "rb") as handle:
                write_bytes_atomic(file.final, handle.read())
            os.unlink(file.staged)
            renamed[file.staged] = file.final
        if isinstance(result, dict):
            result = {
                k: renamed.get(v, v) if isinstance(v, str) else v
                for k, v in result.items()
            }
        return result

    @staticmethod
    def discard(files: Sequence[StagedFile]) -> None:
        for file in files:
            for path in (file.staged, file.staged + ".partial"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def close(self) -> None:
        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)
            self._made = None


class _Worker:
    """One worker process; its stderr is copied into ``log_path`` by ``pump_log``."""

    def __init__(self, index: int, target: str, log_path: str, env: dict[str, str]):
        self.index = index
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the worker
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mnas.search.workers.worker", target]
            + [str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for stream in (self.proc.stdout, self.proc.stderr):
            os.set_blocking(stream.fileno(), False)
        with contextlib.suppress(AttributeError, OSError):
            fcntl.fcntl(self.proc.stderr.fileno(), fcntl.F_SETPIPE_SZ, _LOG_PIPE_BYTES)
        self.log_open = True
        self.buffer = b""
        self.trial_id: int | None = None
        self.files: list[StagedFile] = []
        self.started = 0.0

    def send(self, trial_id: int, task: dict[str, Any], files: list[StagedFile]):
        self.trial_id = trial_id
        self.files = files
        self.started = time.monotonic()
        line = json.dumps({"trial_id": trial_id, "task": task}) + "\n"
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()

    def pump_log(self) -> bool:
        """Copies what the worker wrote on stderr into its log; True at EOF."""
        if not self.log_open:
            return True
        data, eof = _read_available(self.proc.stderr.fileno())
        if data:
            self._log.write(data)
            self._log.flush()
        if eof:
            self.log_open = False
        return eof

    def read_messages(self) -> tuple[list[dict[str, Any]], bool]:
        """Returns complete messages and whether stdout reached EOF."""
        data, eof = _read_available(self.proc.stdout.fileno())
        self.buffer += data
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
        self.pump_log()  # what it wrote before it died
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()
        self._log.close()


class SubprocessPool:
    """``num_workers`` long-lived workers running ``target`` (``module:function``).

    ``output_keys``: the task keys that name output files (staged, then moved
    into place by ``poll``); ``staging_dir``: where the staging folder is made
    (default: the system's temporary folder). Workers are started by
    ``submit``, and die with the thread that started them (Linux), so call
    ``submit`` from the thread that runs the search.
    """

    def __init__(
        self,
        target: str,
        num_workers: int,
        log_dir: str,
        trial_timeout_s: float = 3600.0,
        threads_per_worker: int | None = None,
        output_keys: Sequence[str] = OUTPUT_KEYS,
        staging_dir: str | None = None,
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
        self._staging = Staging(output_keys, staging_dir)

    def free_slots(self) -> int:
        return sum(1 for w in self._slots if w is None or w.trial_id is None)

    def busy(self) -> int:
        return len(self._slots) - self.free_slots()

    def worker_pids(self) -> list[int]:
        """The pids of the running workers (for tests and diagnostics)."""
        return [w.proc.pid for w in self._slots if w is not None]

    def submit(self, trial_id: int, task: dict[str, Any]) -> None:
        for index, worker in enumerate(self._slots):
            if worker is None:
                worker = self._start(index)
            if worker.trial_id is None:
                staged_task, files = self._staging.stage(trial_id, task)
                try:
                    worker.send(trial_id, staged_task, files)
                except BrokenPipeError:  # it died while idle: use a fresh one
                    self._retire(worker)
                    self._start(index).send(trial_id, staged_task, files)
                return
        raise RuntimeError("no free worker: check free_slots() before submit()")

    def _start(self, index: int) -> _Worker:
        log_path = os.path.join(self._log_dir, f"worker-{index}.log")
        worker = _Worker(index, self._target, log_path, self._env)
        self._selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)
        self._selector.register(worker.proc.stderr, selectors.EVENT_READ, worker)
        self._slots[index] = worker
        return worker

    def _retire(self, worker: _Worker) -> None:
        for stream in (worker.proc.stdout, worker.proc.stderr):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(stream)
        worker.kill()
        Staging.discard(worker.files)
        worker.files = []
        self._slots[worker.index] = None

    def _finished(self, worker: _Worker, message: dict[str, Any]) -> Outcome:
        trial_id, files = worker.trial_id, worker.files
        worker.trial_id, worker.files = None, []
        if not message["ok"]:
            Staging.discard(files)
            return Outcome(trial_id, False, error=message.get("error"))
        try:
            result = Staging.deliver(files, message.get("result"))
        except OSError as error:
            Staging.discard(files)
            return Outcome(
                trial_id, False, error=f"cannot move the trial's output: {error}"
            )
        return Outcome(trial_id, True, result)

    def poll(self, timeout: float = 1.0) -> list[Outcome]:
        """Waits up to ``timeout`` seconds; returns finished trials."""
        outcomes: list[Outcome] = []
        if self.worker_pids():
            ready = self._selector.select(timeout if self.busy() else 0)
        else:
            ready = []
        for key, _ in ready:
            worker: _Worker = key.data
            if self._slots[worker.index] is not worker:
                continue  # retired by an earlier key of this round
            if key.fileobj is worker.proc.stderr:
                if worker.pump_log():
                    self._selector.unregister(worker.proc.stderr)
                continue
            messages, eof = worker.read_messages()
            for message in messages:
                if "trial_id" not in message or message["trial_id"] != worker.trial_id:
                    continue  # the ready banner
                outcomes.append(self._finished(worker, message))
            if eof:
                returncode = worker.proc.wait()
                worker.pump_log()
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
        """Kills every worker (running trials are dropped, their staged files
        removed); safe to call twice."""
        try:
            for worker in self._slots:
                if worker is not None:
                    self._retire(worker)
        finally:
            self._selector.close()
            self._staging.close()


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
