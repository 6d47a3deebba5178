"""Whole-model measurements for the latency predictor: calibration and evaluation.

Each architecture is built and exported by ``mnas.latency.export.export_to_file``,
the way the search exports its candidates, then timed on the backend.

Timing noise on a shared machine is larger than the predictor's error (two
30-run medians of one model can differ by 10-25%, REFERENCE.md §3), so whole
models are timed in interleaved rounds — every model once per round. With an
``AdaptiveTiming`` (the default of ``mnas-latency``) that is an adaptive
measurement (``mnas.latency.measure.adaptive``: rounds until each model's
interval meets the target or the time cap, interference watched), a model
flagged unstable is measured again after the others, and each latency
carries its interval: ``--evaluate_predictor`` counts a prediction inside the
measurement's interval as agreeing, and measures every model a second time,
independently, for the noise ceiling (how often two measurements of the same
file agree). Without one, a model's latency is the median of ``rounds``
round medians.
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
from mnas.latency.lut.builder import AdaptiveTiming, time_remeasuring
from mnas.latency.lut.predictor import LatencyPredictor, fit_calibration
from mnas.latency.lut.table import Calibration
from mnas.latency.result import LatencyResult
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


def export_specs(
    specs: Sequence[ArchSpec],
    folder: str,
    num_classes: int = 1000,
    resolution: int | None = None,
    progress: ProgressFn | None = None,
) -> list[str]:
    """Each spec as ``folder/arch<i>.tflite`` (a file already there is kept)."""
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
    return paths


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
        paths = export_specs(
            specs, folder or scratch, num_classes, resolution, progress
        )
        return measure_interleaved(paths, backend, rounds, progress, round_medians)


def measure_specs_adaptively(
    specs: Sequence[ArchSpec],
    backend: LatencyBackend,
    timing: AdaptiveTiming,
    num_classes: int = 1000,
    resolution: int | None = None,
    progress: ProgressFn | None = None,
    folder: str | None = None,
    repeats: int = 1,
) -> list[list[LatencyResult]]:
    """Exports every spec, then ``repeats`` independent adaptive measurements
    of them all (each re-measuring its unstable models): one list of results
    per repeat, in the order of ``specs``."""
    with tempfile.TemporaryDirectory(prefix="mnas_whole_") as scratch:
        paths = export_specs(
            specs, folder or scratch, num_classes, resolution, progress
        )
        measurements = []
        for repeat in range(repeats):
            independent = dataclasses.replace(
                timing,
                settings=dataclasses.replace(
                    timing.settings, seed=timing.settings.seed + 1000 * repeat
                ),
            )
            measurements.append(time_remeasuring(backend, paths, independent, progress))
        return measurements


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
    timing: AdaptiveTiming | None = None,
) -> Calibration:
    """Fits and stores the table's calibration on whole-model measurements
    (adaptive with ``timing``: the report then also keeps each model's
    interval and names the models still unstable after re-measuring)."""
    raw = [predictor.raw_ms(spec) for spec in specs]
    header = predictor.table.header
    names = [s.name for s in specs]
    if timing is None:
        measured = measure_specs(
            specs,
            backend,
            rounds,
            num_classes=header.num_classes,
            resolution=header.resolution,
            progress=progress,
        )
        calibration = fit_calibration(raw, measured, names)
    else:
        (results,) = measure_specs_adaptively(
            specs,
            backend,
            timing,
            num_classes=header.num_classes,
            resolution=header.resolution,
            progress=progress,
        )
        fitted = fit_calibration(raw, [r.median_ms for r in results], names)
        calibration = Calibration(
            fitted.scale,
            fitted.offset_ms,
            {
                **fitted.report,
                "measured_interval_ms": [
                    None if iv is None else [round(v, 4) for v in iv]
                    for iv in map(_interval, results)
                ],
                "unstable_models": [
                    n for n, r in zip(names, results) if r.stable is False
                ],
            },
        )
    predictor.table.set_calibration(calibration)
    return calibration


def _interval(result: LatencyResult) -> tuple[float, float] | None:
    """A result's interval; None for a plain result or a single round (whose
    zero-width "interval" would count every other value as outside)."""
    u = result.uncertainty
    if u is None or u.rounds < 2:
        return None
    return (u.low_ms, u.high_ms)


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
    """How one predictor did against measurements.

    ``within_interval``: the share of predictions inside the measurement's
    own interval, over the ``interval_models`` models whose measurement has
    one (None when none has); ``models``: how many models it was computed
    on.
    """

    name: str
    within_10pct: float
    within_5pct: float
    rmse_ms: float
    mean_abs_rel_error: float
    spearman: float
    within_interval: float | None = None
    models: int = 0
    interval_models: int = 0

    @classmethod
    def of(
        cls,
        name: str,
        predicted: Sequence[float],
        measured: Sequence[float],
        intervals: Sequence[tuple[float, float] | None] | None = None,
    ):
        p = np.asarray(predicted, dtype=np.float64)
        m = np.asarray(measured, dtype=np.float64)
        relative = np.abs(p - m) / m
        inside, known = None, []
        if intervals is not None:
            known = [i for i, interval in enumerate(intervals) if interval is not None]
        if known:
            low, high = np.array([intervals[i] for i in known], dtype=np.float64).T
            inside = float(np.mean((low <= p[known]) & (p[known] <= high)))
        return cls(
            name=name,
            within_10pct=float(np.mean(relative <= 0.10)),
            within_5pct=float(np.mean(relative <= 0.05)),
            rmse_ms=float(np.sqrt(np.mean((p - m) ** 2))),
            mean_abs_rel_error=float(np.mean(relative)),
            spearman=rank_correlation(p, m),
            within_interval=inside,
            models=int(p.size),
            interval_models=len(known),
        )


def _inside_cell(quality: PredictionQuality) -> str:
    """``62.0%``, or ``62.0% of 18`` when only some measurements had an
    interval, or ``-`` when none had."""
    if quality.within_interval is None:
        return "-"
    text = f"{100 * quality.within_interval:.1f}%"
    if quality.interval_models < quality.models:
        text += f" of {quality.interval_models}"
    return text


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
    #: The noise ceiling: another measurement of the same files taken as a
    #: "prediction" of the first (adaptive: a second, independent adaptive
    #: measurement; plain: round 1's medians against round 2's); None with
    #: a single plain round.
    repeat_measurement: PredictionQuality | None = None
    #: Adaptive measurements: each model's interval and verdict, the second
    #: measurement's estimates, and the comparisons restricted to the models
    #: whose two measurements were both stable. A bound is None where the
    #: measurement has no interval (a single round).
    measured_low_ms: tuple[float | None, ...] = ()
    measured_high_ms: tuple[float | None, ...] = ()
    measured_stable: tuple[bool | None, ...] = ()
    second_ms: tuple[float, ...] = ()
    lut_stable: PredictionQuality | None = None
    repeat_stable: PredictionQuality | None = None

    def table_rows(self) -> list[tuple]:
        rows = []
        qualities = [self.lut, self.lut_uncalibrated, self.macs_linear]
        if self.repeat_measurement is not None:
            qualities.append(self.repeat_measurement)
        qualities += [q for q in (self.lut_stable, self.repeat_stable) if q]
        for q in qualities:
            rows.append(
                (
                    q.name,
                    f"{100 * q.within_10pct:.1f}%",
                    f"{100 * q.within_5pct:.1f}%",
                    _inside_cell(q),
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
        "inside interval",
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
    timing: AdaptiveTiming | None = None,
) -> PredictorEvaluation:
    """Measures ``specs`` whole and compares the predictor and a MACs baseline.

    The baseline is a linear fit of latency on multiply-adds over the same
    measurements (in-sample, so it is favoured); the predictor's calibration
    was fitted beforehand on other architectures. With ``timing`` every
    model is measured adaptively twice, independently: the first measurement
    is the truth (a prediction inside its interval counts as agreeing), the
    second, judged the same way, is the noise ceiling.
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
    adaptive: dict = {}
    if timing is None:
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
        intervals = None
    else:
        first, second = measure_specs_adaptively(
            specs,
            backend,
            timing,
            num_classes=header.num_classes,
            resolution=header.resolution,
            progress=progress,
            folder=folder,
            repeats=2,
        )
        measured = [r.median_ms for r in first]
        intervals = [_interval(r) for r in first]
        again = [r.median_ms for r in second]
        repeat = PredictionQuality.of(
            "second measurement vs first (same files)", again, measured, intervals
        )
        adaptive = _adaptive_fields(first, second, predicted, again, intervals)
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
        lut=PredictionQuality.of(
            "lookup table (calibrated)", predicted, measured, intervals
        ),
        lut_uncalibrated=PredictionQuality.of(
            "lookup table (raw sum)", raw, measured, intervals
        ),
        macs_linear=PredictionQuality.of(
            "linear in multiply-adds", list(mac_predicted), measured, intervals
        ),
        round_medians_ms=tuple(tuple(row) for row in round_medians),
        repeat_measurement=repeat,
        **adaptive,
    )


def _adaptive_fields(first, second, predicted, again, intervals) -> dict:
    """The evaluation's fields that only adaptive measurements have."""
    both = [i for i, (a, b) in enumerate(zip(first, second)) if a.stable and b.stable]
    fields = {
        "measured_low_ms": tuple(None if iv is None else iv[0] for iv in intervals),
        "measured_high_ms": tuple(None if iv is None else iv[1] for iv in intervals),
        "measured_stable": tuple(r.stable for r in first),
        "second_ms": tuple(again),
    }
    if both and len(both) < len(first):

        def pick(values):
            return [values[i] for i in both]

        measured = pick([r.median_ms for r in first])
        stable_intervals = pick(intervals)
        fields["lut_stable"] = PredictionQuality.of(
            f"lookup table (calibrated), {len(both)} models stable twice",
            pick(predicted),
            measured,
            stable_intervals,
        )
        fields["repeat_stable"] = PredictionQuality.of(
            f"second vs first measurement, {len(both)} models stable twice",
            pick(again),
            measured,
            stable_intervals,
        )
    return fields
