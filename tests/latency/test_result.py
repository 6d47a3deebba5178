"""LatencyResult and BackendFingerprint: statistics, keys, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

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
