"""One round of timing, and how rounds of one model pool into a result.

A round is one fresh interpreter (host) or one fresh process (the CLI
backends) timing one model: what varies between rounds (memory placement,
caches, frequency, neighbours) is sampled only by running more of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mnas.latency.backend import LatencyBackend
from mnas.latency.measure.stats import RoundData
from mnas.latency.result import BackendFingerprint, LatencyResult


@dataclass(frozen=True)
class Round:
    """A round's summary, plus its per-run times where the backend has them.

    The host backend keeps every run time; ``litert-benchmark`` and
    ``benchmark_model`` print only statistics, so their rounds carry an
    empty ``samples_ms`` and the estimator works from (center, std, runs).
    """

    result: LatencyResult
    samples_ms: tuple[float, ...] = ()

    def data(self) -> RoundData:
        """The numbers the estimator needs."""
        if self.samples_ms:
            return RoundData.from_samples(self.samples_ms)
        return RoundData(
            center=self.result.median_ms,
            std=self.result.std_ms,
            runs=self.result.runs,
            center_is_mean=self.result.median_is_mean,
        )


def sample_rounds(
    backend: LatencyBackend, tflite_path: str, rounds: int = 1
) -> list[Round]:
    """``rounds`` rounds of one model, each a fresh interpreter or process.

    Uses the backend's ``measure_rounds`` where it has one (host: keeps the
    run times), else one ``measure`` call per round.
    """
    from mnas.latency.cache import CachedBackend

    if isinstance(backend, CachedBackend):
        raise ValueError(
            "time rounds on the backend itself, not through its cache: a cached "
            "file would repeat one round instead of measuring a new one"
        )
    method = getattr(backend, "measure_rounds", None)
    if method is not None:
        return list(method(tflite_path, rounds))
    return [Round(backend.measure(tflite_path)) for _ in range(rounds)]


def pool_rounds(
    rounds: Sequence[Round], fingerprint: BackendFingerprint
) -> LatencyResult:
    """Statistics of all timed runs of several rounds, as one result.

    With every run time known this is :meth:`LatencyResult.from_samples`
    on the pooled runs.  From summaries only, the mean and standard
    deviation are pooled exactly (within- plus between-round variance),
    min/max are the extremes, percentiles are unknown, and ``median_ms``
    is the median of the round centers.
    """
    if not rounds:
        raise ValueError("pool_rounds needs at least one round")
    inits = [r.result.init_ms for r in rounds if r.result.init_ms is not None]
    init_ms = float(np.mean(inits)) if inits else None
    first_run_ms = rounds[0].result.first_run_ms
    if all(r.samples_ms for r in rounds):
        pooled = [v for r in rounds for v in r.samples_ms]
        return LatencyResult.from_samples(
            pooled, fingerprint, init_ms=init_ms, first_run_ms=first_run_ms
        )
    results = [r.result for r in rounds]
    counts = np.array([r.runs for r in results], dtype=np.float64)
    means = np.array([r.mean_ms for r in results])
    stds = np.array([r.std_ms for r in results])
    total = float(counts.sum())
    mean = float((counts * means).sum() / total)
    squares = ((counts - 1) * stds**2).sum() + (counts * (means - mean) ** 2).sum()
    std = math.sqrt(float(squares) / (total - 1)) if total > 1 else 0.0
    return LatencyResult(
        median_ms=float(np.median([r.median_ms for r in results])),
        mean_ms=mean,
        std_ms=std,
        min_ms=min(r.min_ms for r in results),
        max_ms=max(r.max_ms for r in results),
        p5_ms=None,
        p95_ms=None,
        runs=int(total),
        init_ms=init_ms,
        first_run_ms=first_run_ms,
        fingerprint=fingerprint,
        median_is_mean=any(r.median_is_mean for r in results),
    )
