"""Whole-model measurements for the latency predictor: calibration and evaluation.

Each architecture is built and exported by ``mnas.latency.export.export_to_file``,
the way the search exports its candidates, then timed on the backend.

Timing noise on a shared machine is larger than the predictor's error (two
30-run medians of one model can differ by 10-25%, REFERENCE.md §3), so whole
models are timed in interleaved rounds — every model once per round — and
each model's latency is the median of its round medians.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Sequence

import numpy as np

from mnas.latency.backend import LatencyBackend
from mnas.latency.export import export_to_file
from mnas.latency.lut.predictor import LatencyPredictor, fit_calibration
from mnas.latency.lut.table import Calibration
from mnas.search_space import ArchSpec
from mnas.search_space.space import FactorizedSearchSpace

ProgressFn = Callable[[int, int, str], None]


def measure_interleaved(
    paths: Sequence[str],
    backend: LatencyBackend,
    rounds: int = 3,
    progress: ProgressFn | None = None,
    round_medians: list[list[float]] | None = None,
) -> list[float]:
    """Median over ``rounds`` of each file's median, timing files round-robin.

    ``round_medians``, if given, receives each round's medians (one list per
    round): two rounds of the same files show how far this machine's own
    measurements disagree, the ceiling for any predictor checked against them.
    """
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    medians = np.zeros((rounds, len(paths)))
    done, total = 0, rounds * len(paths)
    for r in range(rounds):
        for i, path in enumerate(paths):
            medians[r, i] = backend.measure(path).median_ms
            done += 1
            if progress is not None:
                progress(
                    done, total, f"round {r + 1}/{rounds} {os.path.basename(path)}"
                )
    if round_medians is not None:
        round_medians.extend([float(v) for v in row] for row in medians)
    return [float(v) for v in np.median(medians, axis=0)]


def measure_specs(
    specs: Sequence[ArchSpec],
    backend: LatencyBackend,
    rounds: int = 3,
    num_classes: int = 1000,
    resolution: int | None = None,
    progress: ProgressFn | None = None,
    folder: str | None = None,
    round_medians: list[list[float]] | None = None,
) -> list[float]:
    """Exports every spec, then times them all in interleaved rounds."""
    with tempfile.TemporaryDirectory(prefix="mnas_whole_") as scratch:
        folder = folder or scratch
        os.makedirs(folder, exist_ok=True)
        paths = []
        for index, spec in enumerate(specs):
            path = os.path.join(folder, f"arch{index:04d}.tflite")
            if not os.path.exists(path):
                export_to_file(
                    spec,
                    path,
                    resolution=resolution,
                    num_classes=num_classes,
                    clear_session=True,
                )
            paths.append(path)
            if progress is not None:
                progress(index + 1, len(specs), f"exported {spec.name}")
        return measure_interleaved(paths, backend, rounds, progress, round_medians)


def sample_specs(space: FactorizedSearchSpace, count: int, seed: int) -> list[ArchSpec]:
    """``count`` architectures sampled uniformly (per decision) from ``space``."""
    rng = np.random.default_rng(seed)
    specs = []
    for index in range(count):
        spec = space.decode(space.sample(rng))
        specs.append(dataclasses.replace(spec, name=f"{space.name}-s{seed}-{index}"))
    return specs


def calibrate(
    predictor: LatencyPredictor,
    specs: Sequence[ArchSpec],
    backend: LatencyBackend,
    rounds: int = 3,
    progress: ProgressFn | None = None,
) -> Calibration:
    """Fits and stores the table's calibration on whole-model measurements."""
    raw = [predictor.raw_ms(spec) for spec in specs]
    measured = measure_specs(
        specs,
        backend,
        rounds,
        num_classes=predictor.table.header.num_classes,
        resolution=predictor.table.header.resolution,
        progress=progress,
    )
    calibration = fit_calibration(raw, measured, [s.name for s in specs])
    predictor.table.set_calibration(calibration)
    return calibration


# -- evaluation ---------------------------------------------------------------------


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho (average ranks for ties)."""

    def ranks(values: Sequence[float]) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        order = np.argsort(values, kind="mergesort")
        result = np.empty(len(values))
        result[order] = np.arange(len(values), dtype=np.float64)
        for value in np.unique(values):
            tied = values == value
            result[tied] = result[tied].mean()
        return result

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclasses.dataclass(frozen=True)
class PredictionQuality:
    """How one predictor did against measurements."""

    name: str
    within_10pct: float
    within_5pct: float
    rmse_ms: float
    mean_abs_rel_error: float
    spearman: float

    @classmethod
    def of(cls, name: str, predicted: Sequence[float], measured: Sequence[float]):
        p = np.asarray(predicted, dtype=np.float64)
        m = np.asarray(measured, dtype=np.float64)
        relative = np.abs(p - m) / m
        return cls(
            name=name,
            within_10pct=float(np.mean(relative <= 0.10)),
            within_5pct=float(np.mean(relative <= 0.05)),
            rmse_ms=float(np.sqrt(np.mean((p - m) ** 2))),
            mean_abs_rel_error=float(np.mean(relative)),
            spearman=rank_correlation(p, m),
        )


@dataclasses.dataclass(frozen=True)
class PredictorEvaluation:
    names: tuple[str, ...]
    measured_ms: tuple[float, ...]
    predicted_ms: tuple[float, ...]
    raw_ms: tuple[float, ...]
    macs: tuple[int, ...]
    mac_fit: tuple[float, float]  # ms per MMAC, offset ms
    predict_seconds_per_arch: float
    lut: PredictionQuality
    lut_uncalibrated: PredictionQuality
    macs_linear: PredictionQuality
    round_medians_ms: tuple[tuple[float, ...], ...] = ()
    #: Round 1's medians taken as a "prediction" of round 2's: the agreement of
    #: two measurements of the same files, None with a single round.
    repeat_measurement: PredictionQuality | None = None

    def table_rows(self) -> list[tuple]:
        rows = []
        qualities = [self.lut, self.lut_uncalibrated, self.macs_linear]
        if self.repeat_measurement is not None:
            qualities.append(self.repeat_measurement)
        for q in qualities:
            rows.append(
                (
                    q.name,
                    f"{100 * q.within_10pct:.1f}%",
                    f"{100 * q.within_5pct:.1f}%",
                    f"{q.rmse_ms:.3f}",
                    f"{100 * q.mean_abs_rel_error:.1f}%",
                    f"{q.spearman:.3f}",
                )
            )
        return rows

    HEADERS = (
        "predictor",
        "within ±10%",
        "within ±5%",
        "RMSE ms",
        "mean |err|",
        "Spearman",
    )

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        return data


def evaluate_predictor(
    predictor: LatencyPredictor,
    specs: Sequence[ArchSpec],
    backend: LatencyBackend,
    rounds: int = 3,
    progress: ProgressFn | None = None,
    folder: str | None = None,
) -> PredictorEvaluation:
    """Measures ``specs`` whole and compares the predictor and a MACs baseline.

    The baseline is a linear fit of latency on multiply-adds over the same
    measurements (in-sample, so it is favoured); the predictor's calibration
    was fitted beforehand on other architectures.
    """
    from mnas.model.cost import compute_stats

    header = predictor.table.header
    for spec in specs:  # fills missing entries before any timing starts
        predictor.raw_ms(spec)
    # Time a fresh predictor: no memoized keys, as the search sees a new spec.
    cold = LatencyPredictor(predictor.table, calibrated=predictor.calibrated)
    start = time.process_time()
    predicted = [cold.predict(spec) for spec in specs]
    seconds = (time.process_time() - start) / max(1, len(specs))
    raw = [predictor.raw_ms(spec) for spec in specs]
    round_medians: list[list[float]] = []
    measured = measure_specs(
        specs,
        backend,
        rounds,
        num_classes=header.num_classes,
        resolution=header.resolution,
        progress=progress,
        folder=folder,
        round_medians=round_medians,
    )
    repeat = None
    if len(round_medians) >= 2:
        repeat = PredictionQuality.of(
            "round 1 vs round 2 (same files)", round_medians[0], round_medians[1]
        )
    macs = [
        compute_stats(
            spec, (header.resolution, header.resolution, 3), header.num_classes
        ).macs
        for spec in specs
    ]
    design = np.stack([np.asarray(macs) / 1e6, np.ones(len(macs))], axis=1)
    (per_mmac, offset), *_ = np.linalg.lstsq(design, np.asarray(measured), rcond=None)
    mac_predicted = design @ np.array([per_mmac, offset])
    return PredictorEvaluation(
        names=tuple(s.name for s in specs),
        measured_ms=tuple(measured),
        predicted_ms=tuple(predicted),
        raw_ms=tuple(raw),
        macs=tuple(int(m) for m in macs),
        mac_fit=(float(per_mmac), float(offset)),
        predict_seconds_per_arch=seconds,
        lut=PredictionQuality.of("lookup table (calibrated)", predicted, measured),
        lut_uncalibrated=PredictionQuality.of("lookup table (raw sum)", raw, measured),
        macs_linear=PredictionQuality.of(
            "linear in multiply-adds", list(mac_predicted), measured
        ),
        round_medians_ms=tuple(tuple(row) for row in round_medians),
        repeat_measurement=repeat,
    )
