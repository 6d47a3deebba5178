"""Measures lookup-table entries on a backend: the whole space, or what is missing.

Each entry is exported as its own tiny ``.tflite`` (``lut_graph``) and timed
by the backend the table is for, so a table for a phone is measured on the
phone. Entries are appended to the table file as they are measured: a killed
build resumes by measuring only what the file lacks. A build holds a lock on
the table file (``<table>.lock``), so a second build of the same file is
refused while the first runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Sequence

from mnas.io.lock import FileLock, LockedError
from mnas.latency.backend import LatencyBackend
from mnas.latency.lut.graph import export_entry
from mnas.latency.lut.keys import DEFAULT_NUM_CLASSES, LayerKey, space_keys
from mnas.latency.lut.table import Entry, LookupTable, LookupTableError, TableHeader
from mnas.search_space.space import FactorizedSearchSpace

ProgressFn = Callable[[int, int, str], None]


def entry_backend(backend: LatencyBackend) -> LatencyBackend:
    """The same device and settings, with a loop sized for sub-millisecond layers.

    benchmark_model's defaults (a 1 s minimum per model) would make a table of
    thousands of entries take hours; a layer needs far less to settle. The
    fingerprint is unchanged (loop lengths are not part of it).
    """
    from mnas.latency.backends.host import HostBackend

    if isinstance(backend, HostBackend):
        opts = backend.options
        return HostBackend(
            num_threads=opts.num_threads,
            warmup_runs=5,
            warmup_min_secs=0.02,
            num_runs=25,
            min_secs=0.05,
            max_secs=5.0,
            use_xnnpack=opts.use_xnnpack,
            cpus=opts.cpus,
            seed=opts.seed,
        )
    return backend


def new_table_header(
    backend: LatencyBackend,
    space: FactorizedSearchSpace,
    num_classes: int = DEFAULT_NUM_CLASSES,
) -> TableHeader:
    return TableHeader(
        fingerprint=backend.fingerprint(),
        space_identity=space.identity(),
        resolution=space.resolution,
        num_classes=num_classes,
        created_unix=time.time(),
    )


def open_or_create(
    path: str | os.PathLike,
    backend: LatencyBackend,
    space: FactorizedSearchSpace,
    num_classes: int = DEFAULT_NUM_CLASSES,
) -> LookupTable:
    """Loads the table at ``path`` (refusing another backend/space) or starts one."""
    if os.path.exists(path) and os.path.getsize(path) > 0:
        table = LookupTable.load(path)
        table.check_compatible(backend.fingerprint(), space.identity())
        return table
    return LookupTable.create(path, new_table_header(backend, space, num_classes))


def measure_entry(
    key: LayerKey, backend: LatencyBackend, folder: str, seed: int = 0
) -> Entry:
    path = os.path.join(folder, "entry.tflite")
    with open(path, "wb") as handle:
        handle.write(export_entry(key, seed))
    result = backend.measure(path)
    return Entry(
        median_ms=float(result.median_ms),
        min_ms=float(result.min_ms),
        runs=int(result.runs),
        measured_unix=time.time(),
    )


def measure_missing(
    table: LookupTable,
    keys: Sequence[LayerKey],
    backend: LatencyBackend,
    progress: ProgressFn | None = None,
    times: int = 1,
) -> int:
    """Measures every key measured fewer than ``times`` times once more; returns
    how many were measured."""
    todo = _unique(k for k in keys if table.measurements(k) < times)
    timing = entry_backend(backend)
    with tempfile.TemporaryDirectory(prefix="mnas_lut_") as folder:
        for index, key in enumerate(todo):
            table.add(key, measure_entry(key, timing, folder))
            if progress is not None:
                progress(index + 1, len(todo), str(key))
    return len(todo)


def _unique(keys) -> list[LayerKey]:
    seen: set[str] = set()
    result = []
    for key in keys:
        if str(key) not in seen:
            seen.add(str(key))
            result.append(key)
    return result


@dataclasses.dataclass(frozen=True)
class BuildReport:
    total_entries: int
    already_present: int
    measured: int
    seconds: float


def build_space_table(
    table: LookupTable,
    space: FactorizedSearchSpace,
    backend: LatencyBackend,
    progress: ProgressFn | None = None,
    rounds: int = 1,
) -> BuildReport:
    """Fills ``table`` with every entry ``space`` can need (resuming if partial).

    With ``rounds`` > 1 every entry is measured that many times, one full pass
    after another, so a burst of load on a shared machine that slows one
    measurement is unlikely to hit the same entry again minutes later (the
    table keeps each entry's fastest median).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    table.check_compatible(backend.fingerprint(), space.identity())
    with table_lock(table.path):
        return _build(table, space, backend, progress, rounds)


def table_lock(path: str | None) -> contextlib.AbstractContextManager:
    """Takes ``<path>.lock`` (held until the returned context exits), so that two
    builds of one table file never run at once: ``LookupTableError`` names the
    other builder's pid. Nothing for an in-memory table."""
    if path is None:
        return contextlib.nullcontext()
    try:
        return FileLock(f"{path}.lock", f"lookup table {path}").acquire()
    except LockedError as error:
        raise LookupTableError(str(error)) from None


def _build(
    table: LookupTable,
    space: FactorizedSearchSpace,
    backend: LatencyBackend,
    progress: ProgressFn | None,
    rounds: int,
) -> BuildReport:
    keys = space_keys(space, table.header.num_classes)
    present = len(keys) - len(table.missing(keys))
    start = time.monotonic()
    measured = 0
    for round_index in range(1, rounds + 1):

        def tagged(done, total, message, round_index=round_index):
            if progress is not None:
                prefix = f"round {round_index}/{rounds} " if rounds > 1 else ""
                progress(done, total, prefix + message)

        measured += measure_missing(table, keys, backend, tagged, times=round_index)
    return BuildReport(len(keys), present, measured, time.monotonic() - start)
