"""Whole-model measurements for the predictor: interleaving, calibration, quality."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from mnas.latency.backend import LatencyBackend
from mnas.latency.lut import calibration as predictor_eval
from mnas.latency.lut.builder import new_table_header
from mnas.latency.lut.calibration import (
    PredictionQuality,
    calibrate,
    evaluate_predictor,
    measure_interleaved,
    rank_correlation,
    sample_specs,
)
from mnas.latency.lut.predictor import LatencyPredictor, fit_calibration
from mnas.latency.lut.table import LookupTable
from mnas.latency.result import BackendFingerprint, LatencyResult
from mnas.model.cost import compute_stats
from mnas.testing.latency_models import synthetic_table
from mnas.testing.lut import FixedBackend, tiny_space

NUM_CLASSES = 10


class ScriptedBackend(LatencyBackend):
    """Answers each file's next value in turn and records the order of calls."""

    name = "scripted"

    def __init__(self, values: dict[str, list[float]]) -> None:
        self.values = {k: list(v) for k, v in values.items()}
        self.order: list[str] = []

    def fingerprint(self) -> BackendFingerprint:
        return BackendFingerprint.create("scripted", "m", "d", 1, "v")

    def measure(self, tflite_path: str) -> LatencyResult:
        self.order.append(tflite_path)
        return LatencyResult.from_samples(
            [self.values[tflite_path].pop(0)], self.fingerprint()
        )


# -- rank correlation and quality ------------------------------------------------


def test_rank_correlation_known_values():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [9, 3, 2, 1]) == pytest.approx(-1.0)
    # Monotone but not linear: ranks only.
    assert rank_correlation([1, 2, 3, 4], [1, 10, 100, 1000]) == pytest.approx(1.0)
    # Ties get average ranks: a -> [0, 1.5, 1.5, 3], b -> [0, 1, 2, 3]; the
    # Pearson correlation of those is 4.5 / sqrt(4.5 * 5) = sqrt(0.9).
    assert rank_correlation([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(
        math.sqrt(0.9), abs=1e-12
    )
    # d = rank differences (0, 2, -1, -1): 1 - 6 * 6 / (4 * 15) = 0.4.
    assert rank_correlation([1, 2, 3, 4], [1, 4, 2, 3]) == pytest.approx(0.4)
    assert math.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))


def test_prediction_quality_by_hand():
    measured = [1.0, 2.0, 4.0, 8.0]
    predicted = [1.0625, 2.0, 4.25, 9.0]  # errors 6.25%, 0, 6.25%, 12.5%
    quality = PredictionQuality.of("p", predicted, measured)
    assert quality == PredictionQuality(
        name="p",
        within_10pct=0.75,
        within_5pct=0.25,
        rmse_ms=math.sqrt((0.0625**2 + 0.25**2 + 1.0) / 4),
        mean_abs_rel_error=0.0625,
        spearman=1.0,
        models=4,
    )
    # With the measurements' intervals: 9.0 lies outside [7.5, 8.5], 4.25
    # inside [3.8, 4.3], the two others too.
    intervals = [(0.9, 1.1), (1.9, 2.1), (3.8, 4.3), (7.5, 8.5)]
    inside = PredictionQuality.of("p", predicted, measured, intervals)
    assert inside.within_interval == 0.75
    assert inside == dataclasses.replace(
        quality, within_interval=0.75, interval_models=4
    )
    # A measurement without an interval (a single round) is left out of the
    # share instead of counting as a zero-width interval nothing lies inside.
    partly = PredictionQuality.of("p", predicted, measured, [None, *intervals[1:]])
    assert (partly.within_interval, partly.interval_models) == (2 / 3, 3)
    assert (
        PredictionQuality.of("p", measured, measured, [None] * 4).within_interval
        is None
    )
    under = PredictionQuality.of("q", [0.5, 2.0], [1.0, 2.0])
    assert (under.within_10pct, under.mean_abs_rel_error) == (0.5, 0.25)
    assert under.spearman == pytest.approx(1.0)


# -- interleaved timing ----------------------------------------------------------


def test_measure_interleaved_is_round_robin_with_the_median_of_rounds():
    backend = ScriptedBackend({"a.tflite": [5, 1, 3], "b.tflite": [2, 9, 4]})
    progress = []
    medians = measure_interleaved(
        ["a.tflite", "b.tflite"], backend, 3, lambda *a: progress.append(a)
    )
    assert backend.order == ["a.tflite", "b.tflite"] * 3
    assert medians == [3.0, 4.0]
    assert progress[0] == (1, 6, "round 1/3 a.tflite")
    assert progress[-1] == (6, 6, "round 3/3 b.tflite")
    assert len(progress) == 6


def test_measure_interleaved_hands_back_every_rounds_medians():
    backend = ScriptedBackend({"a.tflite": [5, 1, 3], "b.tflite": [2, 9, 4]})
    rounds = []
    measure_interleaved(["a.tflite", "b.tflite"], backend, 3, None, rounds)
    assert rounds == [[5.0, 2.0], [1.0, 9.0], [3.0, 4.0]]


def test_measure_interleaved_one_round_and_bad_rounds():
    backend = ScriptedBackend({"x": [7.0]})
    assert measure_interleaved(["x"], backend, 1) == [7.0]
    with pytest.raises(ValueError) as info:
        measure_interleaved(["x"], backend, 0)
    assert str(info.value) == "rounds must be >= 1"


def test_sample_specs_is_seeded_and_named():
    space = tiny_space()
    specs = sample_specs(space, 3, seed=4)
    assert [s.name for s in specs] == ["tiny-s4-0", "tiny-s4-1", "tiny-s4-2"]
    rng = np.random.default_rng(4)
    for spec in specs:
        assert dataclasses.replace(spec, name="x") == dataclasses.replace(
            space.decode(space.sample(rng)), name="x"
        )
    assert sample_specs(space, 3, seed=4) == specs
    assert sample_specs(space, 3, seed=5) != specs


# -- calibration and evaluation with fake whole models -----------------------------


@pytest.fixture
def fake_exports(monkeypatch):
    """export_to_file writes a placeholder and records what it was asked for."""
    calls = []

    def fake_export(spec, path, *, resolution=None, num_classes=None, **_):
        calls.append((spec.name, resolution, num_classes))
        with open(path, "wb") as handle:
            handle.write(b"not a model")

    monkeypatch.setattr(predictor_eval, "export_to_file", fake_export)
    return calls


def _predictor(path=None, backend=None):
    space = tiny_space()
    source = synthetic_table(space, NUM_CLASSES)
    backend = backend or FixedBackend()
    table = LookupTable.create(path, new_table_header(backend, space, NUM_CLASSES))
    for key in source.keys():  # noqa: SIM118 (a table, not a dict)
        table.add(key, source.get(key))
    return space, LatencyPredictor(table)


def test_calibrate_fits_and_stores_the_calibration(tmp_path, fake_exports):
    path = tmp_path / "t.jsonl"
    space, predictor = _predictor(path)
    specs = sample_specs(space, 4, seed=1)
    raw = [predictor.raw_ms(s) for s in specs]
    whole = {f"arch{i:04d}.tflite": 1.1 * r for i, r in enumerate(raw)}
    backend = FixedBackend(ms_by_name=whole)
    calibration = calibrate(predictor, specs, backend, rounds=2)
    assert fake_exports == [(s.name, 32, NUM_CLASSES) for s in specs]
    assert backend.calls == list(whole) * 2
    assert calibration.scale == pytest.approx(1.1, rel=1e-9)
    assert calibration.offset_ms == 0.0  # scale only by default
    assert calibration.report["models"] == [s.name for s in specs]
    assert calibration == fit_calibration(
        raw, list(whole.values()), [s.name for s in specs]
    )
    assert LookupTable.load(path).calibration == calibration
    assert predictor.predict(specs[0]) == pytest.approx(1.1 * raw[0])


def test_evaluate_predictor_compares_with_measurements(tmp_path, fake_exports):
    space, predictor = _predictor()
    predictor.table.set_calibration(fit_calibration([1, 2], [1.1, 2.2]))
    specs = sample_specs(space, 5, seed=2)
    measured = [0.9, 1.3, 0.7, 1.1, 1.6]
    backend = FixedBackend(
        ms_by_name={f"arch{i:04d}.tflite": m for i, m in enumerate(measured)}
    )
    folder = tmp_path / "whole"
    evaluation = evaluate_predictor(
        predictor, specs, backend, rounds=1, folder=str(folder)
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        f"arch{i:04d}.tflite" for i in range(5)
    ]
    assert evaluation.names == tuple(s.name for s in specs)
    assert evaluation.measured_ms == tuple(measured)
    predicted = [predictor.predict(s) for s in specs]
    raw = [predictor.raw_ms(s) for s in specs]
    assert evaluation.predicted_ms == pytest.approx(predicted, rel=1e-12)
    assert evaluation.raw_ms == pytest.approx(raw, rel=1e-12)
    macs = [compute_stats(s, (32, 32, 3), NUM_CLASSES).macs for s in specs]
    assert evaluation.macs == tuple(macs)
    design = np.stack([np.asarray(macs) / 1e6, np.ones(5)], axis=1)
    fit, *_ = np.linalg.lstsq(design, np.asarray(measured), rcond=None)
    assert evaluation.mac_fit == pytest.approx(tuple(fit), rel=1e-9)
    assert evaluation.lut == PredictionQuality.of(
        "lookup table (calibrated)", evaluation.predicted_ms, measured
    )
    assert evaluation.lut_uncalibrated == PredictionQuality.of(
        "lookup table (raw sum)", evaluation.raw_ms, measured
    )
    assert evaluation.macs_linear.name == "linear in multiply-adds"
    assert evaluation.predict_seconds_per_arch >= 0
    assert evaluation.round_medians_ms == (tuple(measured),)
    assert evaluation.repeat_measurement is None  # one round: nothing to compare
    rows = evaluation.table_rows()
    assert [r[0] for r in rows] == [
        "lookup table (calibrated)",
        "lookup table (raw sum)",
        "linear in multiply-adds",
    ]
    assert len(evaluation.HEADERS) == len(rows[0]) == 7
    assert rows[0][3] == "-"  # plain measurements carry no interval
    assert rows[0][1] == f"{100 * evaluation.lut.within_10pct:.1f}%"
    data = json.loads(json.dumps(evaluation.to_dict()))
    assert data["names"] == list(evaluation.names)
    assert data["lut"]["name"] == "lookup table (calibrated)"
    # Existing files in the folder are reused, not exported again.
    evaluate_predictor(predictor, specs, backend, rounds=1, folder=str(folder))
    assert len(fake_exports) == 5


# -- adaptive whole-model timing -----------------------------------------------------


def _timing(remeasures=1):
    from mnas.latency.lut.builder import AdaptiveTiming
    from mnas.latency.measure.adaptive import AdaptiveSettings

    settings = AdaptiveSettings(
        target=0.02, min_rounds=2, max_rounds=4, max_seconds=1e4, precheck_seconds=0
    )
    return AdaptiveTiming(
        settings, batch=10, remeasures=remeasures, watch_interference=False
    )


def test_calibration_re_measures_a_model_timed_in_a_noisy_phase(tmp_path, fake_exports):
    from mnas.testing.lut import NoisyPhaseBackend

    path = tmp_path / "t.jsonl"
    space, predictor = _predictor(path)
    specs = sample_specs(space, 3, seed=1)
    raw = [predictor.raw_ms(s) for s in specs]
    whole = {f"arch{i:04d}.tflite": 1.2 * r for i, r in enumerate(raw)}
    # arch0001's first 4 rounds (its whole first measurement) are noisy.
    backend = NoisyPhaseBackend({"arch0001.tflite": 4}, ms_by_name=whole)
    calibration = calibrate(predictor, specs, backend, timing=_timing())
    # Interleaved: all three in each round; the quiet two stop after 2 rounds,
    # the noisy one runs to max_rounds, then is measured again on its own.
    assert backend.calls == [
        "arch0000.tflite", "arch0001.tflite", "arch0002.tflite",
        "arch0001.tflite", "arch0002.tflite", "arch0000.tflite",
        "arch0001.tflite", "arch0001.tflite",
        "arch0001.tflite", "arch0001.tflite",
    ]  # fmt: skip
    # The fit uses the stable re-measurement, not the noisy estimate.
    assert calibration.scale == pytest.approx(1.2, rel=1e-9)
    report = calibration.report
    assert report["unstable_models"] == []
    assert report["measured_interval_ms"] == [
        [round(w, 4), round(w, 4)] for w in whole.values()
    ]
    assert LookupTable.load(path).calibration == calibration


def test_a_model_still_noisy_after_its_re_measures_is_used_flagged(
    tmp_path, fake_exports
):
    from mnas.testing.lut import NoisyPhaseBackend

    space, predictor = _predictor()
    specs = sample_specs(space, 2, seed=1)
    backend = NoisyPhaseBackend({"arch0000.tflite": 100}, ms=2.0)
    calibration = calibrate(predictor, specs, backend, timing=_timing(remeasures=2))
    assert backend.calls.count("arch0000.tflite") == 3 * 4  # 1 + 2 measurements
    assert calibration.report["unstable_models"] == [specs[0].name]
    low, high = calibration.report["measured_interval_ms"][0]
    assert low < 2.0 < high


def test_a_single_round_measurement_has_no_interval_in_the_evaluation(
    tmp_path, fake_exports
):
    from mnas.latency.lut.builder import AdaptiveTiming
    from mnas.latency.measure.adaptive import AdaptiveSettings
    from mnas.testing.lut import NoisyPhaseBackend

    space, predictor = _predictor()
    specs = sample_specs(space, 2, seed=2)
    # The time cap ends every measurement after its first round.
    timing = AdaptiveTiming(
        AdaptiveSettings(max_seconds=1e-9, precheck_seconds=0),
        remeasures=0,
        watch_interference=False,
    )
    evaluation = evaluate_predictor(
        predictor, specs, NoisyPhaseBackend({}, ms=1.0), timing=timing
    )
    assert evaluation.measured_low_ms == evaluation.measured_high_ms == (None, None)
    assert evaluation.measured_stable == (False, False)
    assert evaluation.lut.within_interval is None
    assert evaluation.repeat_measurement.within_interval is None
    assert {row[3] for row in evaluation.table_rows()} == {"-"}


def test_evaluate_predictor_counts_predictions_inside_the_interval(
    tmp_path, fake_exports
):
    from mnas.testing.lut import NoisyPhaseBackend

    space, predictor = _predictor()
    specs = sample_specs(space, 4, seed=2)
    measured = [0.9, 1.3, 0.7, 1.1]
    names = [f"arch{i:04d}.tflite" for i in range(4)]
    # arch0003 stays noisy through the first measurement and its re-measure:
    # unstable, with a wide interval; the second measurement finds it steady.
    backend = NoisyPhaseBackend(
        {"arch0003.tflite": 8}, ms_by_name=dict(zip(names, measured))
    )
    evaluation = evaluate_predictor(predictor, specs, backend, timing=_timing())
    # The steady models measure exactly; the noisy one around its truth.
    assert evaluation.measured_ms[:3] == tuple(measured[:3])
    assert evaluation.measured_stable == (True, True, True, False)
    low, high = evaluation.measured_low_ms[3], evaluation.measured_high_ms[3]
    assert low < evaluation.measured_ms[3] < high and high - low > 0.5
    assert evaluation.second_ms == tuple(measured)
    predicted = list(evaluation.predicted_ms)
    intervals = list(zip(evaluation.measured_low_ms, evaluation.measured_high_ms))
    assert evaluation.lut == PredictionQuality.of(
        "lookup table (calibrated)", predicted, evaluation.measured_ms, intervals
    )
    inside = [lo <= p <= hi for p, (lo, hi) in zip(predicted, intervals)]
    assert evaluation.lut.within_interval == sum(inside) / 4
    # The noise ceiling: the second measurement judged like a prediction.
    ceiling = evaluation.repeat_measurement
    assert ceiling.name == "second measurement vs first (same files)"
    assert ceiling.within_interval == 1.0  # 1.1 lies inside arch0003's interval
    assert ceiling == PredictionQuality.of(
        ceiling.name, evaluation.second_ms, evaluation.measured_ms, intervals
    )
    # Restricted to the three models stable both times, the ceiling is exact.
    assert evaluation.repeat_stable.models == evaluation.lut_stable.models == 3
    assert evaluation.repeat_stable.within_10pct == 1.0
    assert evaluation.repeat_stable.rmse_ms == 0.0
    rows = evaluation.table_rows()
    assert [r[0] for r in rows][-3:] == [
        "second measurement vs first (same files)",
        "lookup table (calibrated), 3 models stable twice",
        "second vs first measurement, 3 models stable twice",
    ]
    assert rows[-1][3] == "100.0%"


# -- the real thing, small ---------------------------------------------------------


@pytest.mark.slow
def test_real_end_to_end_on_the_host(tmp_path):
    from mnas.latency.backends.host import HostBackend
    from mnas.latency.lut.builder import build_space_table, open_or_create

    space = tiny_space()
    backend = HostBackend(num_runs=10, min_secs=0.05, warmup_min_secs=0.02)
    table = open_or_create(tmp_path / "t.jsonl", backend, space, NUM_CLASSES)
    report = build_space_table(table, space, backend)
    assert report.measured == report.total_entries == 23
    predictor = LatencyPredictor(table, backend)
    calibration = calibrate(predictor, sample_specs(space, 3, seed=7), backend, 1)
    assert calibration.scale > 0 and calibration.offset_ms == 0.0
    specs = sample_specs(space, 4, seed=8)
    evaluation = evaluate_predictor(predictor, specs, backend, rounds=2)
    for values in (evaluation.measured_ms, evaluation.predicted_ms, evaluation.raw_ms):
        assert len(values) == 4
        assert all(v > 0 for v in values)
    assert evaluation.predicted_ms == pytest.approx(
        [calibration.scale * r for r in evaluation.raw_ms], rel=1e-9
    )
    for quality in (
        evaluation.lut,
        evaluation.lut_uncalibrated,
        evaluation.macs_linear,
    ):
        assert 0.0 <= quality.within_5pct <= quality.within_10pct <= 1.0
        assert quality.rmse_ms >= 0
    assert LookupTable.load(tmp_path / "t.jsonl").calibration == calibration
