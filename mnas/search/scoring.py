"""Latency for finished candidates: measured on the backend, or predicted.

Part of the runner role: the search process owns the latency backend (and its
cache and device pool) and the lookup-table predictor, so timings never overlap
each other and worker processes never touch a device.

Modes: ``measured`` times every exported model; ``predicted`` scores with the
lookup-table predictor and times nothing; ``verified`` predicts, and
``verify`` times the models that enter the top-k.

Two interfaces time models: a ``Backend`` (one model at a time) and a
``BatchBackend`` (a batch spread over several devices: the local device pool,
the phones and latency hosts of a Ray cluster). Whichever it is, every
measurement of one search comes from one platform: the first result's
fingerprint (less a phone's serial, see ``platform_key``) is the search's, and
a result from another platform stops the search with ``MixedPlatformError``
(its latencies would not be comparable; the cache and the lookup table key on
the fingerprint for the same reason).

Unstable results are measured again instead of being used (``settle``): a
measured latency flagged ``stable=False`` (its interval missed the target, or
another process, steal or heat disturbed it) holds its trial back; it is
measured again at the next quiet moment (when the next trial finishes, or at
once when no other trial is running), up to ``remeasures`` times. A stable
result then finishes the trial; otherwise the most precise of its
measurements is used, flagged unstable in the journal, with a warning.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from mnas.search.workers.pool import Outcome
from mnas.search_space import ArchSpec


class Backend(Protocol):
    def measure(self, tflite_path: str) -> Any: ...


class Measured(Protocol):
    """One model's timing from a batch: the result, or why there is none."""

    ok: bool
    result: Any
    error: str | None


@runtime_checkable
class BatchBackend(Protocol):
    """Times a batch at once; item i of the answer belongs to path i.

    ``mnas.latency.pool.DevicePool`` (devices of this machine) and
    ``mnas.search.workers.ray_latency.RayLatencyPool`` (a cluster's) are two.
    """

    def measure_all(self, tflite_paths: Sequence[str]) -> Sequence[Measured]: ...


class MixedPlatformError(ValueError):
    """A latency came from another platform than the search's first one."""


def platform_key(fingerprint) -> str:
    """What every latency of one search must share: the fingerprint, less
    the serial of a phone.

    ``benchmark_model`` keeps a phone's adb serial in ``device_id`` (its
    model in ``device_model``), so phones of one model, runtime and settings
    are one platform; the host runtimes keep the CPU model there, which
    changes the number and stays in the key. (A local ``benchmark_model``
    keeps the CPU model there too: on several hosts, give them one CPU model.)
    """
    if fingerprint.backend == "benchmark_model":
        fingerprint = dataclasses.replace(fingerprint, device_id="*")
    return fingerprint.key()


def describe_fingerprint(fingerprint) -> str:
    parts = [
        fingerprint.backend,
        fingerprint.device_model,
        fingerprint.device_id,
        f"{fingerprint.num_threads} thread(s)",
        fingerprint.runtime_version,
        *(f"{k}={v}" for k, v in fingerprint.options),
    ]
    return ", ".join(str(p) for p in parts)


@dataclasses.dataclass(frozen=True)
class Latency:
    """One trial's latency: the result (with ``median_ms``) or why there is none.

    ``attempts``: how many measurements it took (more than one when an
    unstable result was measured again)."""

    result: Any
    error: str | None
    seconds: float
    attempts: int = 1

    @property
    def stable(self) -> bool | None:
        """The result's verdict (None: a plain result, or none at all)."""
        return getattr(self.result, "stable", None)

    @property
    def ratio(self) -> float | None:
        """The latency relative to the reference, when one was timed."""
        uncertainty = getattr(self.result, "uncertainty", None)
        ratio = getattr(uncertainty, "ratio", None)
        return None if ratio is None else float(ratio.ratio)

    @property
    def half_width(self) -> float:
        """The interval's relative half-width (inf without one)."""
        uncertainty = getattr(self.result, "uncertainty", None)
        return math.inf if uncertainty is None else float(uncertainty.half_width)

    def reason(self) -> str:
        """Why the result is unstable (its first reason)."""
        uncertainty = getattr(self.result, "uncertainty", None)
        reasons = getattr(uncertainty, "reasons", ())
        return reasons[0] if reasons else "unstable"


def latency_note(latency: Mapping[str, Any] | None) -> str:
    """What a trial's line adds to its ms (from ``TrialRecord.latency``): the
    ratio to the reference, other processes that kept a CPU busy or steal
    while it was timed, and a warning when the latency was used flagged
    unstable."""
    uncertainty = (latency or {}).get("uncertainty") or {}
    note = ""
    ratio = uncertainty.get("ratio")
    if ratio:
        note += f" ({float(ratio['ratio']):.3f}x ref)"
    conditions = uncertainty.get("conditions") or {}
    timed = set(conditions.get("timed_cpus") or ())
    busy = [
        f"CPU {cpu}{' (timed)' if cpu in timed else ''} {float(share):.0%}"
        for cpu, share in conditions.get("busy_others") or ()
    ]
    if busy:
        note += f" [other process busy on {', '.join(busy)}]"
    if any("steal" in str(f) for f in conditions.get("interference") or ()):
        note += f" [steal {float(conditions.get('steal') or 0.0):.1%}]"
    if uncertainty.get("stable") is False:
        note += " [latency UNSTABLE]"
    return note


@dataclasses.dataclass
class _Held:
    """A finished trial whose latency came back unstable, waiting to be
    measured again."""

    outcome: Outcome
    best: Latency
    attempts: int = 1
    seconds: float = 0.0


class LatencyScorer:
    """Latencies of finished trials (see the module docstring).

    ``remeasures``: how often an unstable measured result is measured again
    before it is used flagged (0: used at once). ``require_ratio``: a result
    without a ratio to the reference fails its trial (a reward on the ratio
    cannot score it). ``log`` says when a trial is held back or used flagged.
    """

    def __init__(
        self,
        mode: str,
        backend: Backend,
        predictor=None,
        resolution: int = 224,
        remeasures: int = 0,
        require_ratio: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if remeasures < 0:
            raise ValueError(f"remeasures must be >= 0, got {remeasures}")
        self.mode = mode
        self.backend = backend
        self.predictor = predictor
        self.resolution = resolution
        self.remeasures = remeasures
        self.require_ratio = require_ratio
        self.log = log or (lambda line: None)
        self.fingerprint = None  # of the first measured result: the search's
        self.held: dict[int, _Held] = {}  # trial id -> its unstable latency

    def check_platform(self, result: Any) -> None:
        """Takes the first measured result's fingerprint as the search's;
        refuses (``MixedPlatformError``) a result from another platform."""
        fingerprint = getattr(result, "fingerprint", None)
        if fingerprint is None:
            return  # a stand-in result (tests) carries none
        if self.fingerprint is None:
            self.fingerprint = fingerprint
        elif platform_key(fingerprint) != platform_key(self.fingerprint):
            raise MixedPlatformError(
                "a latency was measured on "
                f"[{describe_fingerprint(fingerprint)}] but this search measures "
                f"on [{describe_fingerprint(self.fingerprint)}]; a search never "
                "mixes latency platforms: give every latency device the same "
                "model, runtime and settings"
            )

    @property
    def predicted(self) -> bool:
        return self.mode != "measured"

    def score(
        self, outcomes: Sequence[Outcome], specs: Mapping[int, ArchSpec]
    ) -> dict[int, Latency]:
        """Latency of every successful outcome, keyed by trial id."""
        done = [o for o in outcomes if o.ok]
        if not done:
            return {}
        if self.predicted:
            return {o.trial_id: self._predict(o, specs[o.trial_id]) for o in done}
        return self._measure(done)

    def _predict(self, outcome: Outcome, spec: ArchSpec) -> Latency:
        from mnas.latency.lut.predictor import LookupTableBackend

        start = time.perf_counter()
        try:
            result = LookupTableBackend(self.predictor).measure_spec(
                spec,
                resolution=self.resolution,
                num_classes=outcome.result.get("num_classes"),
            )
            error = None
        except Exception as failure:  # noqa: BLE001 - fails only this trial
            result, error = None, str(failure)
        return Latency(result, error, time.perf_counter() - start)

    def _measure(self, done: Sequence[Outcome]) -> dict[int, Latency]:
        paths = [o.result["tflite_path"] for o in done]
        return {o.trial_id: m for o, m in zip(done, self._measure_paths(paths))}

    def _measure_paths(self, paths: Sequence[str]) -> list[Latency]:
        """A device pool (``measure_all``) spreads the models over its devices;
        a single backend takes them in turn."""
        if isinstance(self.backend, BatchBackend):
            start = time.perf_counter()
            pooled = self.backend.measure_all(paths)
            seconds = (time.perf_counter() - start) / len(paths)
            for item in pooled:
                if item.ok:
                    self.check_platform(item.result)
            return [
                Latency(item.result, None if item.ok else str(item.error), seconds)
                for item in pooled
            ]
        return [self.measure(path) for path in paths]

    # -- unstable results are measured again ---------------------------------
    def settle(
        self,
        outcomes: Sequence[Outcome],
        specs: Mapping[int, ArchSpec],
        in_flight: Collection[int] = (),
    ) -> list[tuple[Outcome, Latency | None]]:
        """The trials that can finish now, each with its latency (None for a
        failed evaluation): ``outcomes`` scored, less those held back for an
        unstable result, plus held-back trials whose turn came.

        ``in_flight``: the ids of every unfinished trial (held-back ones and
        ``outcomes`` included); when none of the others is running, this is
        a quiet moment and held-back trials are measured again at once.
        """
        new = {o.trial_id for o in outcomes}
        running = set(in_flight) - new - set(self.held)
        ready: list[tuple[Outcome, Latency | None]] = []
        if self.held and (outcomes or not running):
            ready.extend(self._measure_held())
        latencies = self.score(outcomes, specs)
        for outcome in outcomes:
            latency = latencies.get(outcome.trial_id)
            if latency is not None and self._hold(outcome, latency):
                continue
            ready.append((outcome, self._final(latency)))
        return ready

    def _hold(self, outcome: Outcome, latency: Latency) -> bool:
        """Holds the trial back if its measured result is unstable."""
        if self.predicted or self.remeasures < 1 or latency.error is not None:
            return False
        if latency.stable is not False:
            return False
        self.held[outcome.trial_id] = _Held(outcome, latency, 1, latency.seconds)
        self.log(
            f"trial {outcome.trial_id}: latency {latency.result.median_ms:.2f} ms "
            f"unstable ({latency.reason()}); measured again when the next trial "
            f"finishes (re-measure 1 of {self.remeasures})"
        )
        return True

    def _measure_held(self) -> list[tuple[Outcome, Latency | None]]:
        """Measures every held-back trial again; returns those that are done
        (stable now, or out of re-measures)."""
        ids = list(self.held)
        paths = [self.held[i].outcome.result["tflite_path"] for i in ids]
        ready = []
        for trial_id, latency in zip(ids, self._measure_paths(paths)):
            held = self.held[trial_id]
            held.attempts += 1
            held.seconds += latency.seconds
            if latency.error is None and (
                latency.stable is not False or latency.half_width < held.best.half_width
            ):
                held.best = latency
            if held.best.stable is not False or held.attempts > self.remeasures:
                del self.held[trial_id]
                best = dataclasses.replace(
                    held.best, seconds=held.seconds, attempts=held.attempts
                )
                if best.stable is False:
                    self.log(
                        f"trial {trial_id}: latency still unstable after "
                        f"{held.attempts} measurements; using the most precise "
                        f"({best.result.median_ms:.2f} ms, flagged: {best.reason()})"
                    )
                ready.append((held.outcome, self._final(best)))
        return ready

    def _final(self, latency: Latency | None) -> Latency | None:
        """A result that lacks the ratio a ratio reward needs fails its trial."""
        if (
            latency is None
            or not self.require_ratio
            or latency.error is not None
            or latency.ratio is not None
        ):
            return latency
        return dataclasses.replace(
            latency,
            result=None,
            error="the latency has no ratio to the reference model, which "
            "--target_ratio needs",
        )

    def measure(self, path: str) -> Latency:
        """Times one model on the backend; a failure is returned, not raised
        (but a result from another platform raises ``MixedPlatformError``)."""
        start = time.perf_counter()
        try:
            result, error = self.backend.measure(path), None
        except Exception as failure:  # noqa: BLE001 - fails only this trial
            result, error = None, str(failure)
        if error is None:
            self.check_platform(result)
        return Latency(result, error, time.perf_counter() - start)
