"""The latency estimate and its interval: a hierarchical bootstrap over rounds.

On a shared VM the spread between rounds (a fresh interpreter or process
each) dwarfs the spread within one: more runs per round do not shrink it,
more rounds do.  So a round contributes one center (its median, or its
mean where a tool printed only a mean) and the estimate is the mean of the
round centers, every round weighing the same.

The interval resamples rounds with replacement and, within each picked
round, its runs (or, where a tool printed only statistics, a normal draw
with that round's standard error), and reads the bootstrap distribution of
the mean at *expanded* percentiles (Hesterberg, "What teachers should know
about the bootstrap", 2015): the tail probability is shrunk so that the
interval widens by the small-sample factor sqrt(k/(k-1)) t_{k-1} / z.
Plain percentiles cover well below their nominal level with the 3-10
rounds a measurement can afford; the expanded ones keep close to it (a test
checks the share over seeds).  Resampling the runs as well as the rounds
counts the within-round noise twice, which errs on the wide side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

#: Rounds with more runs than this use a normal approximation of their
#: median's standard error instead of resampling every run (memory, time).
MAX_RESAMPLED_RUNS = 500

#: Standard error of a median over that of a mean, for normal data.
_MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2.0)


def student_t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t (numpy-free Cornish-Fisher expansion).

    Exact for 1 and 2 degrees of freedom; for 3 or more the expansion in
    the normal quantile (Abramowitz & Stegun 26.7.5) is within 0.5% of the
    exact value at the 95-99% levels used here.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2.0 * p - 1.0) / math.sqrt(2.0 * p * (1.0 - p))
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4.0
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96.0
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160.0
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def expanded_tail(confidence: float, rounds: int) -> float:
    """Two-sided tail probability for the expanded percentile interval."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if rounds < 2:
        raise ValueError(f"an interval needs at least 2 rounds, got {rounds}")
    t = student_t_quantile(1.0 - (1.0 - confidence) / 2.0, rounds - 1)
    return 2.0 * NormalDist().cdf(-math.sqrt(rounds / (rounds - 1)) * t)


@dataclass(frozen=True)
class RoundData:
    """What one round (fresh interpreter or process) gave for one model.

    Attributes:
      center: the round's median in ms, or its mean where the tool printed
        no median (``center_is_mean``).
      samples: per-run times in ms; empty when the tool printed only
        statistics.
      std: sample standard deviation of the runs (used without samples).
      runs: number of timed runs.
    """

    center: float
    samples: tuple[float, ...] = ()
    std: float = 0.0
    runs: int = 1
    center_is_mean: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.center) or self.center <= 0:
            raise ValueError(
                f"a round's center must be finite and > 0, got {self.center}"
            )
        if self.runs < 1:
            raise ValueError(f"a round needs at least one run, got {self.runs}")
        if not math.isfinite(self.std) or self.std < 0:
            raise ValueError(f"a round's std must be finite and >= 0, got {self.std}")

    @classmethod
    def from_samples(cls, samples: Sequence[float]) -> RoundData:
        data = np.asarray(list(samples), dtype=np.float64)
        if data.size == 0 or not np.all(np.isfinite(data)):
            raise ValueError("a round needs at least one finite sample")
        std = float(data.std(ddof=1)) if data.size > 1 else 0.0
        return cls(
            float(np.median(data)), tuple(float(v) for v in data), std, int(data.size)
        )


def round_replicates(
    data: RoundData, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """``resamples`` bootstrap draws of one round's center."""
    samples = np.asarray(data.samples, dtype=np.float64)
    n = samples.size
    if 1 < n <= MAX_RESAMPLED_RUNS:
        picks = rng.integers(0, n, size=(resamples, n))
        return np.median(samples[picks], axis=1)
    if n > MAX_RESAMPLED_RUNS:
        # Robust spread (IQR) so that a few preempted runs do not inflate it.
        q25, q75 = np.percentile(samples, [25, 75])
        se = _MEDIAN_SE_FACTOR * float(q75 - q25) / 1.349 / math.sqrt(n)
    else:
        factor = 1.0 if data.center_is_mean else _MEDIAN_SE_FACTOR
        se = factor * data.std / math.sqrt(data.runs)
    draws = data.center + se * rng.standard_normal(resamples)
    # A center is a time: keep draws positive (matters only for absurd std).
    return np.maximum(draws, data.center * 1e-3)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    rounds: int

    @property
    def half_width(self) -> float:
        """Relative half-width, (high - low) / 2 / estimate."""
        if self.estimate <= 0:
            return math.inf
        return (self.high - self.low) / 2.0 / self.estimate

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def bootstrap_mean(
    replicates: Sequence[np.ndarray],
    centers: Sequence[float],
    confidence: float,
    rng: np.random.Generator,
    log: bool = False,
) -> Interval:
    """Mean of the round centers, with the hierarchical bootstrap interval.

    ``replicates[i]`` holds bootstrap draws of round i's center (from
    :func:`round_replicates`, all of one length).  With ``log=True`` the
    centers and draws are logs and the result is mapped back with exp
    (a geometric mean, used for ratios).  One round gives no interval:
    low = high = estimate, and callers flag it.
    """
    values = np.asarray(centers, dtype=np.float64)
    k = values.size
    if k == 0 or len(replicates) != k:
        raise ValueError(
            f"need one replicate vector per round, got {len(replicates)} for {k}"
        )
    back = np.exp if log else (lambda x: x)
    estimate = float(back(values.mean()))
    if k == 1:
        return Interval(estimate, estimate, estimate, confidence, 1)
    table = np.stack([np.asarray(r, dtype=np.float64) for r in replicates])
    resamples = table.shape[1]
    rows = rng.integers(0, k, size=(resamples, k))
    cols = rng.integers(0, resamples, size=(resamples, k))
    means = table[rows, cols].mean(axis=1)
    tail = expanded_tail(confidence, k)
    low, high = np.quantile(means, [tail / 2.0, 1.0 - tail / 2.0])
    # With 2-4 rounds the resampled means cannot leave the range of the
    # centers, so percentiles alone cover too rarely; the t interval on
    # the bootstrap standard error (corrected to the n - 1 convention)
    # does not have that limit.  The interval is the hull of the two.
    se = float(means.std()) * math.sqrt(k / (k - 1))
    t = student_t_quantile(1.0 - (1.0 - confidence) / 2.0, k - 1)
    center = float(values.mean())
    low, high = min(low, center - t * se), max(high, center + t * se)
    if not log:
        low = max(low, 0.0)  # a time: the symmetric t part must not go negative
    low, high = float(back(low)), float(back(high))
    # The estimate stays inside its own interval whatever the resamples did.
    return Interval(estimate, min(low, estimate), max(high, estimate), confidence, k)


def spread(centers: Sequence[float]) -> float:
    """Round-to-round spread: (max - min) / mean of the round centers."""
    values = np.asarray(centers, dtype=np.float64)
    if values.size < 2:
        return 0.0
    return float((values.max() - values.min()) / values.mean())
