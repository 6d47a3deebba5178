"""Latency for finished candidates: measured on the backend, or predicted.

Part of the runner role: the search process owns the latency backend (and its
cache and device pool) and the lookup-table predictor, so timings never overlap
each other and worker processes never touch a device.

Modes: ``measured`` times every exported model; ``predicted`` scores with the
lookup-table predictor and times nothing; ``verified`` predicts, and
``verify`` times the models that enter the top-k.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mnas.search.workers.pool import Outcome
from mnas.search_space import ArchSpec


class Backend(Protocol):
    def measure(self, tflite_path: str) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Latency:
    """One trial's latency: the result (with ``median_ms``) or why there is none."""

    result: Any
    error: str | None
    seconds: float


class LatencyScorer:
    def __init__(
        self,
        mode: str,
        backend: Backend,
        predictor=None,
        resolution: int = 224,
    ) -> None:
        self.mode = mode
        self.backend = backend
        self.predictor = predictor
        self.resolution = resolution

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
        """A device pool (``measure_all``) spreads the models over its devices;
        a single backend takes them in turn."""
        paths = [o.result["tflite_path"] for o in done]
        if hasattr(self.backend, "measure_all"):
            start = time.perf_counter()
            pooled = self.backend.measure_all(paths)
            seconds = (time.perf_counter() - start) / len(done)
            return {
                outcome.trial_id: Latency(
                    item.result, None if item.ok else str(item.error), seconds
                )
                for outcome, item in zip(done, pooled)
            }
        return {o.trial_id: self.measure(path) for o, path in zip(done, paths)}

    def measure(self, path: str) -> Latency:
        """Times one model on the backend; a failure is returned, not raised."""
        start = time.perf_counter()
        try:
            result, error = self.backend.measure(path), None
        except Exception as failure:  # noqa: BLE001 - fails only this trial
            result, error = None, str(failure)
        return Latency(result, error, time.perf_counter() - start)
