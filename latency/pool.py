"""Measure many models in parallel on a pool of devices.

Each model is timed on exactly one device of the pool (one backend per
phone serial, or several pinned host workers); results come back in input
order.  A failure belongs to its model: it is recorded in that model's
outcome and the rest of the batch carries on.  A device that fails several
models in a row is retired so a dead phone cannot drain the queue.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mnas.latency.backend import LatencyBackend
from mnas.latency.errors import LatencyError
from mnas.latency.result import LatencyResult


@dataclass(frozen=True)
class PoolOutcome:
    """What happened to one model: a result or an error, and where."""

    index: int
    tflite_path: str
    worker: int | None
    result: LatencyResult | None = None
    error: str | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.result is not None

    def unwrap(self) -> LatencyResult:
        """The result, or the model's error re-raised as LatencyError."""
        if self.result is not None:
            return self.result
        if isinstance(self.exception, LatencyError):
            raise self.exception
        raise LatencyError(f"{self.tflite_path}: {self.error}")


class DevicePool:
    """A fixed set of backends, one worker thread each.

    Threads suit both kinds of worker: adb backends wait on subprocesses,
    and the LiteRT interpreter releases the GIL while it runs.  Host
    workers running side by side slow each other down; pin them to
    distinct cores (:meth:`host`) and keep their number at or below the
    number of free cores.
    """

    def __init__(
        self, backends: Sequence[LatencyBackend], max_consecutive_failures: int = 3
    ) -> None:
        if not backends:
            raise ValueError("a device pool needs at least one backend")
        if max_consecutive_failures < 1:
            raise ValueError("max_consecutive_failures must be >= 1")
        self.backends = list(backends)
        self.max_consecutive_failures = max_consecutive_failures

    def __len__(self) -> int:
        return len(self.backends)

    @classmethod
    def host(
        cls, workers: int, cpus: Sequence[int] | None = None, **host_options: object
    ) -> DevicePool:
        """``workers`` host backends; worker i is pinned to ``cpus[i]``."""
        from mnas.latency.backends.host import HostBackend

        if cpus is not None and len(cpus) < workers:
            raise ValueError(f"need one CPU per worker, got {len(cpus)} for {workers}")
        return cls(
            [
                HostBackend(cpus=None if cpus is None else [cpus[i]], **host_options)
                for i in range(workers)
            ]
        )

    @classmethod
    def adb(
        cls, binary: str, serials: Iterable[str], **backend_options: object
    ) -> DevicePool:
        """One benchmark_model backend per phone serial."""
        from mnas.latency.backends.benchmark_model import AdbBenchmarkModelBackend

        return cls(
            [
                AdbBenchmarkModelBackend(binary, serial=serial, **backend_options)
                for serial in serials
            ]
        )

    def measure_all(self, tflite_paths: Sequence[str]) -> list[PoolOutcome]:
        """Times every file once; outcome i belongs to ``tflite_paths[i]``."""
        paths = [str(p) for p in tflite_paths]
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(paths)):
            todo.put(index)
        outcomes: list[PoolOutcome | None] = [None] * len(paths)
        threads = [
            threading.Thread(
                target=self._work,
                args=(worker, backend, paths, todo, outcomes),
                name=f"latency-pool-{worker}",
                daemon=True,
            )
            for worker, backend in enumerate(self.backends)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [
            outcome
            if outcome is not None
            else PoolOutcome(
                index,
                paths[index],
                None,
                error="not measured: every device in the pool was retired "
                "after repeated failures",
            )
            for index, outcome in enumerate(outcomes)
        ]

    def _work(
        self,
        worker: int,
        backend: LatencyBackend,
        paths: list[str],
        todo: queue.SimpleQueue[int],
        outcomes: list[PoolOutcome | None],
    ) -> None:
        failures = 0
        while failures < self.max_consecutive_failures:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            path = paths[index]
            try:
                result = backend.measure(path)
            except Exception as exc:  # noqa: BLE001 - reported per model
                failures += 1
                outcomes[index] = PoolOutcome(
                    index,
                    path,
                    worker,
                    error=f"{type(exc).__name__}: {exc}",
                    exception=exc,
                )
            else:
                failures = 0
                outcomes[index] = PoolOutcome(index, path, worker, result=result)
