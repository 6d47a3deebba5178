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
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
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
        self.fingerprint = None  # of the first measured result: the search's

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
        """A device pool (``measure_all``) spreads the models over its devices;
        a single backend takes them in turn."""
        paths = [o.result["tflite_path"] for o in done]
        if isinstance(self.backend, BatchBackend):
            start = time.perf_counter()
            pooled = self.backend.measure_all(paths)
            seconds = (time.perf_counter() - start) / len(done)
            for item in pooled:
                if item.ok:
                    self.check_platform(item.result)
            return {
                outcome.trial_id: Latency(
                    item.result, None if item.ok else str(item.error), seconds
                )
                for outcome, item in zip(done, pooled)
            }
        return {o.trial_id: self.measure(path) for o, path in zip(done, paths)}

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
