"""Rounds: estimator inputs, pooling of rounds, and how rounds are sampled."""

from __future__ import annotations

import numpy as np
import pytest

from mnas.latency.backend import LatencyBackend
from mnas.latency.cache import CachedBackend, LatencyCache
from mnas.latency.measure.rounds import Round, pool_rounds, sample_rounds
from mnas.latency.measure.stats import RoundData
from mnas.latency.result import BackendFingerprint, LatencyResult

FP = BackendFingerprint.create("fake", "x", "y", 1, "v")


def summary_round(samples) -> Round:
    """A round as a CLI tool reports it: statistics, no run times."""
    data = np.asarray(samples, dtype=np.float64)
    result = LatencyResult(
        median_ms=float(data.mean()),
        mean_ms=float(data.mean()),
        std_ms=float(data.std(ddof=1)),
        min_ms=float(data.min()),
        max_ms=float(data.max()),
        p5_ms=None,
        p95_ms=None,
        runs=int(data.size),
        init_ms=2.0,
        first_run_ms=3.0,
        fingerprint=FP,
        median_is_mean=True,
    )
    return Round(result)


def test_round_data_from_samples_or_from_statistics():
    with_samples = Round(
        LatencyResult.from_samples([1.0, 2.0, 9.0], FP), (1.0, 2.0, 9.0)
    )
    assert with_samples.data() == RoundData.from_samples([1.0, 2.0, 9.0])
    only_stats = summary_round([1.0, 2.0, 9.0]).data()
    assert (only_stats.center, only_stats.samples, only_stats.runs) == (4.0, (), 3)
    assert only_stats.std == pytest.approx(np.std([1, 2, 9], ddof=1))
    assert only_stats.center_is_mean


def test_pooling_rounds_with_run_times_is_pooling_the_runs():
    a, b = [1.0, 2.0, 3.0], [10.0, 11.0]
    rounds = [
        Round(
            LatencyResult.from_samples(a, FP, init_ms=4.0, first_run_ms=5.0), tuple(a)
        ),
        Round(LatencyResult.from_samples(b, FP, init_ms=6.0), tuple(b)),
    ]
    pooled = pool_rounds(rounds, FP)
    expected = LatencyResult.from_samples(a + b, FP, init_ms=5.0, first_run_ms=5.0)
    assert pooled == expected


def test_pooling_statistics_only_matches_the_pooled_runs():
    rng = np.random.default_rng(0)
    parts = [rng.normal(7, 0.3, n) for n in (50, 30, 80)]
    pooled = pool_rounds([summary_round(p) for p in parts], FP)
    everything = np.concatenate(parts)
    assert pooled.runs == everything.size
    assert pooled.mean_ms == pytest.approx(everything.mean())
    assert pooled.std_ms == pytest.approx(everything.std(ddof=1))
    assert (pooled.min_ms, pooled.max_ms) == (everything.min(), everything.max())
    assert pooled.p5_ms is None and pooled.median_is_mean
    assert pooled.median_ms == pytest.approx(np.median([p.mean() for p in parts]))
    with pytest.raises(ValueError, match="pool_rounds needs at least one round"):
        pool_rounds([], FP)


class OneShot(LatencyBackend):
    name = "one-shot"

    def __init__(self) -> None:
        self.calls = 0

    def fingerprint(self):
        return FP

    def measure(self, tflite_path):
        self.calls += 1
        return LatencyResult.from_samples([float(self.calls)], FP)


def test_backends_without_rounds_measure_once_per_round(tmp_path):
    backend = OneShot()
    rounds = sample_rounds(backend, "m.tflite", 3)
    assert [r.result.median_ms for r in rounds] == [1.0, 2.0, 3.0]
    assert all(r.samples_ms == () for r in rounds)


def test_rounds_refuse_a_cached_backend(tmp_path):
    cached = CachedBackend(OneShot(), LatencyCache(tmp_path / "c.sqlite"))
    with pytest.raises(ValueError, match="not through its cache"):
        sample_rounds(cached, "m.tflite")
