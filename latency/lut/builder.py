"""Measures lookup-table entries on a backend: the whole space, or what is missing.

Each entry is exported as its own tiny ``.tflite`` (``lut_graph``) and timed
by the backend the table is for, so a table for a phone is measured on the
phone. Entries are appended to the table file as they are measured: a killed
build resumes by measuring only what the file lacks. A build holds a lock on
the table file (``<table>.lock``), so a second build of the same file is
refused while the first runs.

With an ``AdaptiveTiming`` (``mnas-latency --build_lut`` by default) entries
are timed a batch at a time in interleaved adaptive rounds
(``mnas.latency.measure.adaptive``: a fresh interpreter per round, an
interference check before each batch), each line records the entry's
interval and verdict, and an entry flagged unstable (measured in a noisy
phase) is measured again after the rest of the pass, up to
``remeasures`` times; the table keeps a stable measurement over an unstable
one. The same timing measures whole models for the calibration
(``time_remeasuring``).
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
from mnas.latency.measure.adaptive import AdaptiveSettings, measure_adaptive
from mnas.latency.result import LatencyResult
from mnas.search_space.space import FactorizedSearchSpace

ProgressFn = Callable[[int, int, str], None]

#: The stopping rule of an entry: ±5% (a table of 2,685 entries cannot wait
#: for ±2% on a noisy host), 3-10 rounds, at most 0.5 s per entry of a batch.
ENTRY_SETTINGS = AdaptiveSettings(
    target=0.05, min_rounds=3, max_rounds=10, max_seconds=0.5, precheck_seconds=0.1
)


@dataclasses.dataclass(frozen=True)
class AdaptiveTiming:
    """How a table times files: a batch at a time in the same adaptive rounds,
    and a result flagged unstable measured again after the others.

    Attributes:
      settings: the stopping rule; ``max_seconds`` is per file (a batch of
        n files may take n times as long).
      batch: files timed in the same rounds.
      remeasures: how often a result flagged unstable is measured again,
        later, before it is kept flagged.
      watch_interference: watch for other busy processes and steal during
        each batch (False: only the interval decides; fakes in tests).
    """

    settings: AdaptiveSettings = ENTRY_SETTINGS
    batch: int = 8
    remeasures: int = 1
    watch_interference: bool = True

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        if self.remeasures < 0:
            raise ValueError(f"remeasures must be >= 0, got {self.remeasures}")


def time_batch(
    backend: LatencyBackend,
    paths: Sequence[str],
    timing: AdaptiveTiming,
    attempt: int = 0,
) -> list[LatencyResult]:
    """One adaptive measurement of ``paths`` interleaved (a fresh bootstrap
    seed per attempt, so a re-measurement is independent)."""
    settings = dataclasses.replace(
        timing.settings,
        seed=timing.settings.seed + attempt,
        max_seconds=timing.settings.max_seconds * len(paths),
    )
    outcome = measure_adaptive(
        backend, list(paths), settings, monitor=timing.watch_interference
    )
    return list(outcome.results)


def better_result(new: LatencyResult, old: LatencyResult | None) -> bool:
    """Whether ``new`` should replace ``old``: not flagged unstable where
    ``old`` is, else a narrower interval."""
    if old is None:
        return True
    if (new.stable is False) != (old.stable is False):
        return old.stable is False
    return _half_width(new) < _half_width(old)


def _half_width(result: LatencyResult) -> float:
    u = result.uncertainty
    return float("inf") if u is None else u.half_width


def time_remeasuring(
    backend: LatencyBackend,
    paths: Sequence[str],
    timing: AdaptiveTiming,
    progress: ProgressFn | None = None,
) -> list[LatencyResult]:
    """Times every file (``timing.batch`` at a time), then those flagged
    unstable again, after all the others, up to ``timing.remeasures`` times;
    returns each file's best result (``better_result``)."""
    best: list[LatencyResult | None] = [None] * len(paths)
    pending = list(range(len(paths)))
    for attempt in range(1 + timing.remeasures):
        again = []
        for start in range(0, len(pending), timing.batch):
            chunk = pending[start : start + timing.batch]
            results = time_batch(backend, [paths[i] for i in chunk], timing, attempt)
            for i, result in zip(chunk, results):
                if better_result(result, best[i]):
                    best[i] = result
                if result.stable is False:
                    again.append(i)
            if progress is not None:
                done = min(start + len(chunk), len(pending))
                what = "measured" if attempt == 0 else "measured again (unstable)"
                progress(done, len(pending), f"{what}: {done} of {len(pending)}")
        pending = again
        if not pending:
            break
    return [r for r in best if r is not None]


def entry_backend(backend: LatencyBackend, rounds: bool = False) -> LatencyBackend:
    """The same device and settings, with a loop sized for sub-millisecond layers.

    benchmark_model's defaults (a 1 s minimum per model) would make a table of
    thousands of entries take hours; a layer needs far less to settle. With
    ``rounds`` the loop is one of several adaptive rounds and shorter still.
    The fingerprint is unchanged (loop lengths are not part of it).
    """
    from mnas.latency.backends.host import HostBackend

    if isinstance(backend, HostBackend):
        opts = backend.options
        loop = (
            {
                "warmup_runs": 2,
                "warmup_min_secs": 0.01,
                "num_runs": 10,
                "min_secs": 0.02,
            }
            if rounds
            else {
                "warmup_runs": 5,
                "warmup_min_secs": 0.02,
                "num_runs": 25,
                "min_secs": 0.05,
            }
        )
        return HostBackend(
            num_threads=opts.num_threads,
            max_secs=5.0,
            use_xnnpack=opts.use_xnnpack,
            cpus=opts.cpus,
            seed=opts.seed,
            **loop,
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


def _write_entry(key: LayerKey, path: str, seed: int = 0) -> str:
    with open(path, "wb") as handle:
        handle.write(export_entry(key, seed))
    return path


def entry_of(result: LatencyResult) -> Entry:
    """A table entry from a result (with its interval and verdict if it has one)."""
    u = result.uncertainty
    return Entry(
        median_ms=float(result.median_ms),
        min_ms=float(result.min_ms),
        runs=int(result.runs),
        measured_unix=time.time(),
        low_ms=None if u is None else float(u.low_ms),
        high_ms=None if u is None else float(u.high_ms),
        rounds=None if u is None else int(u.rounds),
        stable=None if u is None else bool(u.stable),
    )


def measure_entry(
    key: LayerKey, backend: LatencyBackend, folder: str, seed: int = 0
) -> Entry:
    path = _write_entry(key, os.path.join(folder, "entry.tflite"), seed)
    return entry_of(backend.measure(path))


@dataclasses.dataclass(frozen=True)
class EntryStats:
    """What one call of ``measure_entries`` did."""

    measured: int = 0  # keys measured (once each)
    remeasured: int = 0  # further measurements of keys flagged unstable
    unstable: int = 0  # keys still flagged unstable after them


def measure_missing(
    table: LookupTable,
    keys: Sequence[LayerKey],
    backend: LatencyBackend,
    progress: ProgressFn | None = None,
    times: int = 1,
    timing: AdaptiveTiming | None = None,
) -> int:
    """Measures every key measured fewer than ``times`` times once more; returns
    how many keys were measured (see ``measure_entries``)."""
    return measure_entries(table, keys, backend, progress, times, timing).measured


def measure_entries(
    table: LookupTable,
    keys: Sequence[LayerKey],
    backend: LatencyBackend,
    progress: ProgressFn | None = None,
    times: int = 1,
    timing: AdaptiveTiming | None = None,
) -> EntryStats:
    """Measures every key measured fewer than ``times`` times once more: one
    plain loop each, or with ``timing`` adaptively (an unstable key measured
    again after the others; each measurement counts as one of ``times``)."""
    todo = _unique(k for k in keys if table.measurements(k) < times)
    if timing is not None:
        return _measure_adaptively(table, todo, backend, progress, timing)
    looped = entry_backend(backend)
    with tempfile.TemporaryDirectory(prefix="mnas_lut_") as folder:
        for index, key in enumerate(todo):
            table.add(key, measure_entry(key, looped, folder))
            if progress is not None:
                progress(index + 1, len(todo), str(key))
    return EntryStats(measured=len(todo))


def _measure_adaptively(
    table: LookupTable,
    todo: Sequence[LayerKey],
    backend: LatencyBackend,
    progress: ProgressFn | None,
    timing: AdaptiveTiming,
) -> EntryStats:
    """Batches of entries in interleaved rounds; every measurement is appended
    at once (a kill loses one batch at most); the files of unstable entries
    are kept for their re-measurement after the pass."""
    rounds = entry_backend(backend, rounds=True)
    unstable: list[tuple[LayerKey, str]] = []
    remeasured = 0
    with tempfile.TemporaryDirectory(prefix="mnas_lut_") as folder:
        for attempt in range(1 + timing.remeasures):
            work = (
                [
                    (k, os.path.join(folder, f"entry{i:05d}.tflite"))
                    for i, k in enumerate(todo)
                ]
                if attempt == 0
                else unstable
            )
            if not work:
                break
            again = []
            for start in range(0, len(work), timing.batch):
                chunk = work[start : start + timing.batch]
                if attempt == 0:
                    for key, path in chunk:
                        _write_entry(key, path)
                paths = [path for _, path in chunk]
                results = time_batch(rounds, paths, timing, attempt)
                for offset, ((key, path), result) in enumerate(zip(chunk, results)):
                    table.add(key, entry_of(result))
                    remeasured += int(attempt > 0)
                    if result.stable is False:
                        again.append((key, path))
                    else:
                        os.remove(path)
                    if progress is not None:
                        what = str(key) if attempt == 0 else f"again (unstable): {key}"
                        progress(start + offset + 1, len(work), what)
            unstable = again
    return EntryStats(len(todo), remeasured, len(unstable))


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
    remeasured: int = 0  # measurements of entries flagged unstable, again
    unstable: int = 0  # entries whose best measurement is still unstable


def build_space_table(
    table: LookupTable,
    space: FactorizedSearchSpace,
    backend: LatencyBackend,
    progress: ProgressFn | None = None,
    rounds: int = 1,
    timing: AdaptiveTiming | None = None,
) -> BuildReport:
    """Fills ``table`` with every entry ``space`` can need (resuming if partial).

    With ``rounds`` > 1 every entry is measured that many times, one full pass
    after another, so a burst of load on a shared machine that slows one
    measurement is unlikely to hit the same entry again minutes later (the
    table keeps each entry's stable, fastest median). ``timing``: adaptive
    entries (see the module docstring); None: one plain loop per entry.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    table.check_compatible(backend.fingerprint(), space.identity())
    with table_lock(table.path):
        return _build(table, space, backend, progress, rounds, timing)


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
    timing: AdaptiveTiming | None,
) -> BuildReport:
    keys = space_keys(space, table.header.num_classes)
    present = len(keys) - len(table.missing(keys))
    start = time.monotonic()
    measured = remeasured = 0
    for round_index in range(1, rounds + 1):

        def tagged(done, total, message, round_index=round_index):
            if progress is not None:
                prefix = f"round {round_index}/{rounds} " if rounds > 1 else ""
                progress(done, total, prefix + message)

        stats = measure_entries(
            table, keys, backend, tagged, times=round_index, timing=timing
        )
        measured += stats.measured
        remeasured += stats.remeasured
    names = {str(k) for k in keys}
    unstable = sum(key in names for key in table.unstable())
    return BuildReport(
        len(keys), present, measured, time.monotonic() - start, remeasured, unstable
    )
