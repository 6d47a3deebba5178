"""LatencyResult and BackendFingerprint: statistics, keys, JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mnas.latency.measure.conditions import Conditions
from mnas.latency.measure.uncertainty import RatioEstimate, Uncertainty
from mnas.latency.result import BackendFingerprint, LatencyResult

FP = BackendFingerprint.create(
    "benchmark_model",
    "Pixel 1",
    "FA6AB0301234",
    1,
    "benchmark_model sha256:abc",
    options={"taskset": "f0", "use_xnnpack": True, "unset": None},
)


def test_from_samples_statistics():
    samples = [5.0, 1.0, 4.0, 2.0, 3.0, 100.0]
    result = LatencyResult.from_samples(samples, FP, init_ms=12.5, first_run_ms=9.0)
    assert result.median_ms == 3.5
    assert result.mean_ms == pytest.approx(np.mean(samples))
    assert result.std_ms == pytest.approx(np.std(samples, ddof=1))
    assert (result.min_ms, result.max_ms, result.runs) == (1.0, 100.0, 6)
    assert result.p5_ms == pytest.approx(1.25)  # linear interpolation
    assert result.p95_ms == pytest.approx(76.25)
    assert (result.init_ms, result.first_run_ms) == (12.5, 9.0)
    assert result.cv == pytest.approx(result.std_ms / result.mean_ms)
    single = LatencyResult.from_samples([2.0], FP)
    assert (single.std_ms, single.p5_ms, single.p95_ms) == (0.0, 2.0, 2.0)


def test_percentiles_follow_litert_benchmark_convention():
    from ai_edge_litert.tools.benchmark_litert_model import percentile

    samples = sorted(np.random.default_rng(0).gamma(2.0, 3.0, 37).tolist())
    result = LatencyResult.from_samples(samples, FP)
    assert result.p5_ms == pytest.approx(percentile(samples, 5))
    assert result.p95_ms == pytest.approx(percentile(samples, 95))
    assert result.median_ms == pytest.approx(percentile(samples, 50))


def test_from_samples_rejects_empty_and_nan():
    with pytest.raises(ValueError):
        LatencyResult.from_samples([], FP)
    with pytest.raises(ValueError):
        LatencyResult.from_samples([1.0, float("nan")], FP)


def test_validation():
    good = LatencyResult.from_samples([1.0, 2.0], FP).to_dict()
    with pytest.raises(ValueError, match="at least one run"):
        LatencyResult.from_dict({**good, "runs": 0})
    with pytest.raises(ValueError, match="min_ms"):
        LatencyResult.from_dict({**good, "min_ms": 5.0, "max_ms": 1.0})
    with pytest.raises(ValueError, match="median_ms"):
        LatencyResult.from_dict({**good, "median_ms": -1.0})


def test_json_round_trip_is_exact():
    result = LatencyResult(
        median_ms=7.1,
        mean_ms=7.2,
        std_ms=0.1,
        min_ms=7.0,
        max_ms=7.9,
        p5_ms=None,
        p95_ms=None,
        runs=50,
        init_ms=None,
        first_run_ms=8.5,
        fingerprint=FP,
        median_is_mean=True,
        extra=(("warmup_avg_ms", 7.3),),
    )
    text = json.dumps(result.to_dict())
    assert LatencyResult.from_dict(json.loads(text)) == result


def test_fingerprint_options_are_canonical():
    assert dict(FP.options) == {"taskset": "f0", "use_xnnpack": "true"}
    reordered = BackendFingerprint(
        "benchmark_model",
        "Pixel 1",
        "FA6AB0301234",
        1,
        "benchmark_model sha256:abc",
        (("use_xnnpack", "true"), ("taskset", "f0")),
    )
    assert reordered == FP
    assert reordered.key() == FP.key()
    assert BackendFingerprint.from_dict(json.loads(FP.key())) == FP
    cpus = BackendFingerprint.create("host", "x", "y", 1, "v", {"cpus": (3, 1)})
    assert dict(cpus.options)["cpus"] == "1,3"


@pytest.mark.parametrize(
    "change",
    [
        {"backend": "host"},
        {"device_model": "Pixel 2"},
        {"device_id": "OTHER"},
        {"num_threads": 2},
        {"runtime_version": "benchmark_model sha256:def"},
        {"options": (("taskset", "0f"),)},
    ],
)
def test_every_field_changes_the_key(change):
    fields = {**FP.to_dict(), **change}
    fields["options"] = [list(p) for p in fields["options"]]
    assert BackendFingerprint.from_dict(fields).key() != FP.key()


def adaptive_result(stable: bool = True) -> LatencyResult:
    reasons = () if stable else ("interval ±4.1% wider than the target ±2.0%",)
    uncertainty = Uncertainty(
        estimate_ms=9.53,
        low_ms=9.33,
        high_ms=9.73,
        confidence=0.95,
        rounds=6,
        round_ms=(9.4, 9.5, 9.6, 9.5, 9.55, 9.63),
        spread=0.04,
        target=0.02,
        stable=stable,
        reasons=reasons,
        conditions=Conditions(load_avg=0.9, steal=0.0),
        ratio=RatioEstimate("MobileNetV2 1.0 @224", 6.8, 1.401, 1.37, 1.43, 6),
    )
    plain = LatencyResult.from_samples([9.2, 9.53, 9.9], FP)
    return dataclasses.replace(plain, median_ms=9.53, uncertainty=uncertainty)


def test_old_cached_dicts_still_load_and_plain_results_keep_their_dict():
    # A dict written before results carried an interval.
    old = {
        "median_ms": 7.1,
        "mean_ms": 7.2,
        "std_ms": 0.1,
        "min_ms": 7.0,
        "max_ms": 7.9,
        "p5_ms": None,
        "p95_ms": None,
        "runs": 50,
        "init_ms": None,
        "first_run_ms": 8.5,
        "fingerprint": FP.to_dict(),
        "median_is_mean": True,
        "extra": [["warmup_avg_ms", 7.3]],
    }
    result = LatencyResult.from_dict(old)
    assert result.uncertainty is None and result.stable is None
    assert result.to_dict() == old


def test_adaptive_result_round_trips_with_its_interval():
    for stable in (True, False):
        result = adaptive_result(stable)
        back = LatencyResult.from_dict(json.loads(json.dumps(result.to_dict())))
        assert back == result
        assert back.stable is stable


def test_summary_prints_the_interval_conditions_ratio_and_verdict():
    assert adaptive_result().summary() == (
        "9.53 ms ±2.1% (95% CI 9.33-9.73, 6 rounds, spread 4%, load 0.9, "
        "steal 0.0%, freq unavailable); 1.401x MobileNetV2 1.0 @224 "
        "(95% CI 1.370-1.430, 6 paired rounds) stable"
    )
    assert (
        adaptive_result(stable=False)
        .summary()
        .endswith(" UNSTABLE: interval ±4.1% wider than the target ±2.0%")
    )
    plain = LatencyResult.from_samples([1.0, 2.0, 30.0], FP)
    assert plain.summary() == (
        "2.00 ms (median of 3 runs in one round: no interval, stability unknown)"
    )
