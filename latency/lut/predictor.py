"""Predicts an architecture's latency from the lookup table, in microseconds of work.

``predict(spec)`` = calibration(sum of the table's entries for the spec's
layers). The raw sum under-predicts a whole model (a layer timed alone finds
its weights in cache; REFERENCE.md §3 measured whole/sum ≈ 1.08 here), so a
linear calibration ``scale * sum + offset`` is fitted on a few whole-model
measurements and stored in the table file with a report of the fit.

A key the table lacks is measured on the table's backend and added when a
backend is given; without one the prediction fails naming the key. It is
never silently skipped: a sum with a hole in it looks plausible and is wrong.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from mnas.latency.backend import LatencyBackend
from mnas.latency.errors import LatencyError
from mnas.latency.lut.builder import AdaptiveTiming, measure_missing
from mnas.latency.lut.keys import LayerKey, keys_for_spec
from mnas.latency.lut.table import Calibration, LookupTable, MissingEntryError
from mnas.latency.result import BackendFingerprint, LatencyResult
from mnas.search_space import ArchSpec


class LatencyPredictor:
    """Sums table entries; measures (and records) missing ones when it can."""

    def __init__(
        self,
        table: LookupTable,
        backend: LatencyBackend | None = None,
        calibrated: bool = True,
        timing: AdaptiveTiming | None = None,
    ) -> None:
        if backend is not None:
            table.check_compatible(backend.fingerprint())
        self.table = table
        self.backend = backend
        self.calibrated = calibrated
        self.timing = timing  # how missing entries are measured (None: plainly)
        self._keys: dict[tuple, tuple[LayerKey, ...]] = {}

    @property
    def calibration(self) -> Calibration:
        return self.table.calibration if self.calibrated else Calibration()

    def keys(
        self,
        spec: ArchSpec,
        resolution: int | None = None,
        num_classes: int | None = None,
    ) -> tuple[LayerKey, ...]:
        resolution = self.table.header.resolution if resolution is None else resolution
        classes = self.table.header.num_classes if num_classes is None else num_classes
        memo = (spec, resolution, classes)
        keys = self._keys.get(memo)
        if keys is None:
            keys = keys_for_spec(spec, resolution, classes)
            if len(self._keys) > 100_000:
                self._keys.clear()
            self._keys[memo] = keys
        return keys

    def raw_ms(
        self,
        spec: ArchSpec,
        resolution: int | None = None,
        num_classes: int | None = None,
    ) -> float:
        """The uncalibrated sum of entries."""
        keys = self.keys(spec, resolution, num_classes)
        try:
            return self.table.sum_ms(keys)
        except MissingEntryError:
            missing = self.table.missing(keys)
            if self.backend is None:
                raise MissingEntryError(missing, self.table.path) from None
            measure_missing(self.table, missing, self.backend, timing=self.timing)
            return self.table.sum_ms(keys)

    def predict(
        self,
        spec: ArchSpec,
        resolution: int | None = None,
        num_classes: int | None = None,
    ) -> float:
        """Predicted whole-model latency in ms (at the table's resolution and
        classifier width unless given)."""
        return self.calibration.apply(self.raw_ms(spec, resolution, num_classes))

    def breakdown(self, spec: ArchSpec) -> list[tuple[str, float]]:
        """(key, ms) per layer, for `mnas-latency --predict`."""
        keys = self.keys(spec)
        self.raw_ms(spec)  # fills what is missing, or raises
        return [(str(k), self.table.ms(k)) for k in keys]


# -- calibration ---------------------------------------------------------------------


def fit_calibration(
    raw_ms: Sequence[float],
    measured_ms: Sequence[float],
    names: Sequence[str] | None = None,
    with_offset: bool = False,
) -> Calibration:
    """Least-squares ``measured ≈ scale * raw`` (``+ offset`` on request), with a
    report.

    Scale only by default: the gap between a whole model and its sum of layers
    is cache traffic, which grows with the model; and a handful of noisy
    calibration models spanning a narrow range fits offsets that extrapolate
    badly (8 models of 8-13 ms on a quiet host gave 0.87 × sum + 3.15 ms,
    +50% on a 2 ms model).
    """
    raw = np.asarray(raw_ms, dtype=np.float64)
    measured = np.asarray(measured_ms, dtype=np.float64)
    if raw.shape != measured.shape or raw.ndim != 1 or raw.size < 1:
        raise ValueError("need equally long, non-empty raw and measured sequences")
    if np.any(raw <= 0) or np.any(measured <= 0):
        raise ValueError("latencies must be positive")
    if with_offset and raw.size < 2:
        raise ValueError("fitting an offset needs at least 2 models")
    if with_offset:
        design = np.stack([raw, np.ones_like(raw)], axis=1)
        (scale, offset), *_ = np.linalg.lstsq(design, measured, rcond=None)
    else:
        scale, offset = float(raw @ measured / (raw @ raw)), 0.0
    fitted = scale * raw + offset
    relative = (fitted - measured) / measured
    spread = float(np.sum((measured - measured.mean()) ** 2))
    r2 = 1.0 - float(np.sum((measured - fitted) ** 2)) / spread if spread > 0 else 1.0
    report = {
        "models": list(names) if names is not None else [],
        "raw_ms": [round(float(v), 4) for v in raw],
        "measured_ms": [round(float(v), 4) for v in measured],
        "uncalibrated_ratio_mean": round(float(np.mean(measured / raw)), 4),
        "r2": round(r2, 4),
        "mean_abs_rel_error": round(float(np.mean(np.abs(relative))), 4),
        "max_abs_rel_error": round(float(np.max(np.abs(relative))), 4),
        "with_offset": bool(with_offset),
    }
    return Calibration(float(scale), float(offset), report)


def describe_calibration(calibration: Calibration) -> str:
    r = calibration.report
    if not r:
        return "uncalibrated (scale 1, offset 0)"
    return (
        f"measured ≈ {calibration.scale:.4f} × sum {calibration.offset_ms:+.3f} ms "
        f"on {len(r.get('raw_ms', []))} models (R² {r.get('r2')}, mean |err| "
        f"{100 * r.get('mean_abs_rel_error', 0):.1f}%, max "
        f"{100 * r.get('max_abs_rel_error', 0):.1f}%; raw sums were "
        f"{r.get('uncalibrated_ratio_mean')}× short)"
    )


# -- the predictor behind the backend interface ---------------------------------------


class LookupTableBackend(LatencyBackend):
    """The predictor as a latency backend, for code that takes one.

    It predicts architectures (``measure_spec``), not files: a ``.tflite``
    carries no architecture to look up, so ``measure`` says so.
    """

    name = "lut"

    def __init__(self, predictor: LatencyPredictor) -> None:
        self.predictor = predictor

    def fingerprint(self) -> BackendFingerprint:
        measured_on = self.predictor.table.header.fingerprint
        return dataclasses.replace(
            measured_on,
            backend=f"lut({measured_on.backend})",
            options=(*measured_on.options, ("table", self.predictor.table.path or "")),
        )

    def measure(self, tflite_path: str) -> LatencyResult:
        raise LatencyError(
            f"the lookup-table predictor cannot time {tflite_path}: it predicts "
            "architectures; call measure_spec(spec), or use a measuring backend"
        )

    def measure_spec(
        self,
        spec: ArchSpec,
        resolution: int | None = None,
        num_classes: int | None = None,
    ) -> LatencyResult:
        ms = self.predictor.predict(spec, resolution, num_classes)
        if not math.isfinite(ms) or ms <= 0:
            raise LatencyError(f"predicted latency {ms} ms for {spec.name} is invalid")
        return LatencyResult.from_samples([ms], self.fingerprint())
