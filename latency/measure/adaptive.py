"""Adaptive measurement: interleaved rounds until the interval is tight.

In the spirit of ``pyperf`` (several processes, mean with its spread, a
warning when unstable), written for what moves latency on a shared VM or a
phone: round-to-round drift.  Each round times every model still being
measured once (a fresh interpreter or process each, the order rotating so
that no model always runs first), plus an optional reference model.  After
``min_rounds`` a model stops once its interval's half-width is within
``target`` of its estimate; the loop ends when every model has stopped, at
``max_rounds``, or when another round would pass ``max_seconds``.  A model
that missed the target, or saw another busy process, hypervisor steal or
heat, comes back ``stable=False`` with the reasons, never as if exact.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mnas.latency.backend import LatencyBackend
from mnas.latency.measure.conditions import THERMAL_STATUS_NAMES, AdbReader
from mnas.latency.measure.interference import InterferenceMonitor, InterferenceSettings
from mnas.latency.measure.reference import ReferenceModel
from mnas.latency.measure.rounds import Round, pool_rounds, sample_rounds
from mnas.latency.measure.stats import (
    Interval,
    RoundData,
    bootstrap_mean,
    round_replicates,
    spread,
)
from mnas.latency.measure.uncertainty import RatioEstimate, Uncertainty
from mnas.latency.result import BackendFingerprint, LatencyResult

#: Android thermal status from which a result is not trusted ("moderate").
THERMAL_STATUS_LIMIT = 2

Sampler = Callable[[str], Round]


@dataclass(frozen=True)
class AdaptiveSettings:
    """The stopping rule and what makes a result unstable.

    Attributes:
      target: relative half-width of the interval to reach (0.02: ±2%).
      confidence: level of the interval.
      min_rounds: rounds before a model may stop (at least 2).
      max_rounds: rounds after which the loop stops regardless.
      max_seconds: no round starts that would end after this (its length
        is predicted from the previous round); at least one round runs.
      ratio_target: if set, a model with a reference also waits until its
        ratio's half-width is within this.
      resamples: bootstrap resamples per interval.
      seed: seeds every resample, so one set of rounds gives one interval.
      precheck_seconds: quiet check before timing (0 skips it).
      flag_interference: a busy neighbour or steal makes a result unstable.
    """

    target: float = 0.02
    confidence: float = 0.95
    min_rounds: int = 5
    max_rounds: int = 40
    max_seconds: float = 120.0
    ratio_target: float | None = None
    resamples: int = 2000
    seed: int = 0
    precheck_seconds: float = 0.2
    flag_interference: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.target < 1.0:
            raise ValueError(f"target must be in (0, 1), got {self.target}")
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")
        if self.min_rounds < 2:
            raise ValueError(f"min_rounds must be >= 2, got {self.min_rounds}")
        if self.max_rounds < self.min_rounds:
            raise ValueError(
                f"max_rounds must be >= min_rounds ({self.min_rounds}), got "
                f"{self.max_rounds}"
            )
        if self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")
        if self.ratio_target is not None and not 0.0 < self.ratio_target < 1.0:
            raise ValueError(f"ratio_target must be in (0, 1), got {self.ratio_target}")
        if self.resamples < 100:
            raise ValueError(f"resamples must be >= 100, got {self.resamples}")
        if self.precheck_seconds < 0:
            raise ValueError(
                f"precheck_seconds must be >= 0, got {self.precheck_seconds}"
            )


@dataclass
class _Track:
    """Rounds of one model as they arrive."""

    index: int
    label: str
    path: str
    rounds: list[Round] = field(default_factory=list)
    data: list[RoundData] = field(default_factory=list)
    replicates: list[np.ndarray] = field(default_factory=list)
    round_numbers: list[int] = field(default_factory=list)
    active: bool = True

    @property
    def centers(self) -> list[float]:
        return [d.center for d in self.data]


@dataclass(frozen=True)
class AdaptiveOutcome:
    """Results of one adaptive measurement, in the order of the paths."""

    results: tuple[LatencyResult, ...]
    reference: LatencyResult | None
    rounds: int
    seconds: float
    stop: str  # "target", "max_rounds" or "max_seconds"


class AdaptiveMeasurement:
    """Runs the interleaved rounds for a set of models (and a reference).

    ``sampler(path)`` times one round of one model; ``clock`` measures the
    time cap.  Both are injectable so that the stopping rule can be tested
    with a fake clock and fake rounds.
    """

    def __init__(
        self,
        sampler: Sampler,
        fingerprint: BackendFingerprint,
        settings: AdaptiveSettings | None = None,
        reference: ReferenceModel | None = None,
        monitor: InterferenceMonitor | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sampler = sampler
        self.fingerprint = fingerprint
        self.settings = settings or AdaptiveSettings()
        self.reference = reference
        self.monitor = monitor
        self.clock = clock

    # -- estimates ----------------------------------------------------------

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.settings.seed, *key])

    def _add(self, track: _Track, result: Round, round_number: int) -> None:
        data = result.data()
        rng = self._rng(track.index, len(track.data), 1)
        track.rounds.append(result)
        track.data.append(data)
        track.replicates.append(round_replicates(data, self.settings.resamples, rng))
        track.round_numbers.append(round_number)

    def interval(self, track: _Track) -> Interval:
        rng = self._rng(track.index, len(track.data), 2)
        return bootstrap_mean(
            track.replicates, track.centers, self.settings.confidence, rng
        )

    def ratio(self, track: _Track, reference: _Track) -> Interval | None:
        """Geometric mean of per-round ratios over the rounds both ran."""
        ref_by_round = {n: i for i, n in enumerate(reference.round_numbers)}
        pairs = [
            (i, ref_by_round[n])
            for i, n in enumerate(track.round_numbers)
            if n in ref_by_round
        ]
        if not pairs:
            return None
        logs = [
            np.log(track.data[i].center) - np.log(reference.data[j].center)
            for i, j in pairs
        ]
        replicates = [
            np.log(track.replicates[i]) - np.log(reference.replicates[j])
            for i, j in pairs
        ]
        rng = self._rng(track.index, len(pairs), 3)
        return bootstrap_mean(replicates, logs, self.settings.confidence, rng, log=True)

    def _converged(self, track: _Track, reference: _Track | None) -> bool:
        s = self.settings
        if len(track.data) < s.min_rounds:
            return False
        if self.interval(track).half_width > s.target:
            return False
        if s.ratio_target is not None and reference is not None:
            ratio = self.ratio(track, reference)
            if ratio is None or ratio.half_width > s.ratio_target:
                return False
        return True

    # -- the loop -----------------------------------------------------------

    def run(self, paths: Sequence[str]) -> AdaptiveOutcome:
        if not paths:
            raise ValueError("an adaptive measurement needs at least one model")
        s = self.settings
        tracks = [_Track(i, f"model {i}", str(p)) for i, p in enumerate(paths)]
        reference = None
        if self.reference is not None:
            reference = _Track(len(tracks), "reference", self.reference.path())
        start = self.clock()
        if self.monitor is not None:
            if s.precheck_seconds > 0:
                self.monitor.precheck(s.precheck_seconds)
            self.monitor.begin()
        round_number = 0
        last_round_s = 0.0
        stop = "target"
        while True:
            active = [t for t in tracks if t.active]
            if not active:
                break
            if round_number >= s.max_rounds:
                stop = "max_rounds"
                break
            elapsed = self.clock() - start
            if round_number > 0 and elapsed + last_round_s > s.max_seconds:
                stop = "max_seconds"
                break
            order = ([reference] if reference is not None else []) + active
            shift = round_number % len(order)
            order = order[shift:] + order[:shift]
            round_start = self.clock()
            for track in order:
                self._add(track, self.sampler(track.path), round_number)
                if self.monitor is not None:
                    self.monitor.mark(track.label)
            last_round_s = self.clock() - round_start
            round_number += 1
            for track in active:
                if self._converged(track, reference):
                    track.active = False
        seconds = self.clock() - start
        results = tuple(self._result(t, reference, stop) for t in tracks)
        ref_result = None if reference is None else self._result(reference, None, stop)
        return AdaptiveOutcome(results, ref_result, round_number, seconds, stop)

    # -- results ------------------------------------------------------------

    def _result(
        self, track: _Track, reference: _Track | None, stop: str
    ) -> LatencyResult:
        s = self.settings
        interval = self.interval(track)
        ratio = None
        if reference is not None:
            ratio_interval = self.ratio(track, reference)
            if ratio_interval is not None:
                ratio = RatioEstimate(
                    reference=self.reference.name if self.reference else "reference",
                    reference_ms=self.interval(reference).estimate,
                    ratio=ratio_interval.estimate,
                    low=ratio_interval.low,
                    high=ratio_interval.high,
                    rounds=ratio_interval.rounds,
                )
        conditions = (
            None if self.monitor is None else self.monitor.conditions(track.label)
        )
        reasons = self._reasons(track, interval, ratio, conditions, stop)
        uncertainty = Uncertainty(
            estimate_ms=interval.estimate,
            low_ms=interval.low,
            high_ms=interval.high,
            confidence=s.confidence,
            rounds=len(track.data),
            round_ms=tuple(track.centers),
            spread=spread(track.centers),
            target=s.target,
            stable=not reasons,
            reasons=tuple(reasons),
            conditions=conditions,
            ratio=ratio,
        )
        pooled = pool_rounds(track.rounds, self.fingerprint)
        return dataclasses.replace(
            pooled,
            median_ms=interval.estimate,
            median_is_mean=any(d.center_is_mean for d in track.data),
            uncertainty=uncertainty,
        )

    def _reasons(self, track, interval, ratio, conditions, stop) -> list[str]:
        s = self.settings
        k = len(track.data)
        cause = {
            "max_rounds": f"max_rounds {s.max_rounds} reached",
            "max_seconds": f"time cap {s.max_seconds:g} s reached",
        }.get(stop, "stopped")
        reasons = []
        if k < 2:
            reasons.append(f"only 1 round ({cause}): no interval")
        elif k < s.min_rounds:
            reasons.append(f"only {k} rounds of min_rounds {s.min_rounds} ({cause})")
        if k >= 2 and interval.half_width > s.target:
            reasons.append(
                f"interval ±{interval.half_width:.1%} wider than the target "
                f"±{s.target:.1%} after {k} rounds ({cause})"
            )
        if (
            ratio is not None
            and s.ratio_target is not None
            and ratio.half_width > s.ratio_target
        ):
            reasons.append(
                f"ratio interval ±{ratio.half_width:.1%} wider than the target "
                f"±{s.ratio_target:.1%}"
            )
        if conditions is not None:
            if s.flag_interference:
                reasons.extend(conditions.interference)
            status = conditions.thermal_status
            if status is not None and status >= THERMAL_STATUS_LIMIT:
                name = THERMAL_STATUS_NAMES[min(status, len(THERMAL_STATUS_NAMES) - 1)]
                reasons.append(f"thermal status {status} ({name}): the phone throttles")
        return reasons


# --------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------


def timed_cpus_of(backend: LatencyBackend) -> tuple[int, ...] | None:
    """The CPUs a backend pins its timing to, None when it does not pin."""
    from mnas.latency.backends.affinity import mask_cpus

    options = getattr(backend, "options", None)
    cpus = getattr(options, "cpus", None) or getattr(backend, "cpus", None)
    if cpus is not None:
        return tuple(sorted(cpus))
    mask = getattr(backend, "taskset_mask", None)
    return None if mask is None else mask_cpus(mask)


def monitor_for(
    backend: LatencyBackend,
    settings: InterferenceSettings | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> InterferenceMonitor:
    """An interference monitor for where ``backend`` times.

    A phone backend (one with an adb client) is watched over adb, its
    thermal status included; anything else is watched on this host.
    """
    cpus = timed_cpus_of(backend)
    adb = getattr(backend, "adb", None)
    if adb is not None:
        return InterferenceMonitor(
            AdbReader(adb),
            own=None,
            timed_cpus=cpus,
            settings=settings,
            clock=clock,
            thermal_status=True,
        )
    return InterferenceMonitor(timed_cpus=cpus, settings=settings, clock=clock)


def measure_adaptive(
    backend: LatencyBackend,
    paths: Sequence[str],
    settings: AdaptiveSettings | None = None,
    reference: ReferenceModel | None = None,
    monitor: InterferenceMonitor | None | bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> AdaptiveOutcome:
    """Adaptive, interleaved measurement of ``paths`` on ``backend``.

    ``monitor=True`` builds one with :func:`monitor_for`; False or None
    measures without watching for interference.
    """
    if monitor is True:
        monitor = monitor_for(backend, clock=clock)
    elif monitor is False:
        monitor = None
    return AdaptiveMeasurement(
        sampler=lambda path: sample_rounds(backend, path, 1)[0],
        fingerprint=backend.fingerprint(),
        settings=settings,
        reference=reference,
        monitor=monitor,
        clock=clock,
    ).run(paths)


class AdaptiveBackend(LatencyBackend):
    """A backend whose every result comes from an adaptive measurement.

    Same name and fingerprint as the backend it wraps (the quantity is the
    same; only its uncertainty is new), so ``CachedBackend(AdaptiveBackend
    (host))`` stores results with their intervals and re-measures unstable
    ones.
    """

    def __init__(
        self,
        backend: LatencyBackend,
        settings: AdaptiveSettings | None = None,
        reference: ReferenceModel | None = None,
        watch_interference: bool = True,
    ) -> None:
        self.backend = backend
        self.settings = settings or AdaptiveSettings()
        self.reference = reference
        self.watch_interference = watch_interference
        self.name = backend.name

    def fingerprint(self) -> BackendFingerprint:
        return self.backend.fingerprint()

    def measure(self, tflite_path: str) -> LatencyResult:
        return self.measure_many([tflite_path]).results[0]

    def measure_many(self, tflite_paths: Sequence[str]) -> AdaptiveOutcome:
        """Several models interleaved in the same rounds."""
        return measure_adaptive(
            self.backend,
            tflite_paths,
            self.settings,
            self.reference,
            monitor=self.watch_interference,
        )
