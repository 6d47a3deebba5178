"""The estimator: t quantiles, round replicates, the hierarchical bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnas.latency.measure.stats import (
    MAX_RESAMPLED_RUNS,
    Interval,
    RoundData,
    bootstrap_mean,
    expanded_tail,
    round_replicates,
    spread,
    student_t_quantile,
)

# Student t quantiles from printed tables (p, df) -> t.
T_TABLE = {
    (0.975, 1): 12.7062,
    (0.975, 2): 4.3027,
    (0.975, 3): 3.1824,
    (0.975, 4): 2.7764,
    (0.975, 5): 2.5706,
    (0.975, 9): 2.2622,
    (0.975, 30): 2.0423,
    (0.995, 3): 5.8409,
    (0.995, 9): 3.2498,
    (0.9, 5): 1.4759,
}


def test_t_quantile_matches_printed_tables():
    for (p, df), exact in T_TABLE.items():
        assert student_t_quantile(p, df) == pytest.approx(exact, rel=0.01), (p, df)
        assert student_t_quantile(1 - p, df) == pytest.approx(-exact, rel=0.01)


def test_t_quantile_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\), got 1.0"):
        student_t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="df must be >= 1, got 0"):
        student_t_quantile(0.9, 0)
    with pytest.raises(ValueError, match="an interval needs at least 2 rounds, got 1"):
        expanded_tail(0.95, 1)


def test_expanded_tail_shrinks_with_few_rounds_and_tends_to_nominal():
    tails = [expanded_tail(0.95, k) for k in (2, 3, 5, 10, 100, 10_000)]
    assert tails == sorted(tails)
    assert tails[0] < 1e-6
    assert tails[-1] == pytest.approx(0.05, rel=0.01)


def test_round_data_from_samples_uses_median_and_sample_std():
    data = RoundData.from_samples([3.0, 1.0, 2.0, 10.0])
    assert data.center == 2.5
    assert data.std == pytest.approx(np.std([3, 1, 2, 10], ddof=1))
    assert (data.runs, data.samples) == (4, (3.0, 1.0, 2.0, 10.0))
    with pytest.raises(ValueError, match="a round's center must be finite and > 0"):
        RoundData(0.0)
    with pytest.raises(ValueError, match="a round needs at least one finite sample"):
        RoundData.from_samples([])


def test_replicates_of_resampled_runs_stay_within_the_runs():
    samples = tuple(np.random.default_rng(0).normal(10, 1, 30))
    draws = round_replicates(
        RoundData.from_samples(samples), 500, np.random.default_rng(1)
    )
    assert draws.shape == (500,)
    assert min(samples) <= draws.min() and draws.max() <= max(samples)
    # The median of 30 draws from N(10, 1) varies by about 1.25/sqrt(30).
    assert draws.std() == pytest.approx(1.2533 / math.sqrt(30), rel=0.35)


def test_replicates_from_statistics_only_use_the_standard_error():
    rng = np.random.default_rng(2)
    mean_round = RoundData(7.0, std=0.7, runs=49, center_is_mean=True)
    draws = round_replicates(mean_round, 4000, rng)
    assert draws.mean() == pytest.approx(7.0, abs=0.01)
    assert draws.std() == pytest.approx(0.1, rel=0.05)
    median_round = RoundData(7.0, std=0.7, runs=49)
    assert round_replicates(median_round, 4000, rng).std() == pytest.approx(
        0.1 * math.sqrt(math.pi / 2), rel=0.05
    )
    single = round_replicates(RoundData(7.0), 10, rng)
    assert np.all(single == 7.0)


def test_long_rounds_use_a_robust_normal_approximation():
    rng = np.random.default_rng(3)
    samples = rng.normal(5.0, 0.5, MAX_RESAMPLED_RUNS + 1)
    samples[:20] = 500.0  # preempted runs must not blow up the error
    draws = round_replicates(RoundData.from_samples(samples), 2000, rng)
    expected_se = 1.2533 * 0.5 / math.sqrt(samples.size)
    assert draws.std() == pytest.approx(expected_se, rel=0.2)


def _synthetic_rounds(rng, k, runs=20, between=0.05, within=0.03, truth=10.0):
    """Rounds whose centers scatter around ``truth`` (symmetric noise)."""
    return [
        RoundData.from_samples(
            truth
            * (1 + between * rng.standard_normal())
            * (1 + within * rng.standard_normal(runs))
        )
        for _ in range(k)
    ]


def _interval(rounds, seed, resamples=500, confidence=0.95):
    rng = np.random.default_rng(seed)
    reps = [round_replicates(r, resamples, rng) for r in rounds]
    return bootstrap_mean(reps, [r.center for r in rounds], confidence, rng)


@pytest.mark.parametrize("k", [3, 8])
def test_interval_covers_the_true_value_in_the_nominal_share_of_seeds(k):
    truth, seeds = 10.0, 160
    hits = 0
    for seed in range(seeds):
        rounds = _synthetic_rounds(np.random.default_rng(10_000 + seed), k, truth=truth)
        hits += _interval(rounds, seed).contains(truth)
    # Nominal 95%; resampling runs and rounds errs on the wide side.  The
    # band allows for 160 seeds (binomial sd 1.7 points).
    assert 0.91 <= hits / seeds <= 0.995


def test_interval_narrows_as_rounds_accumulate():
    few, many = [], []
    for seed in range(10):
        rounds = _synthetic_rounds(np.random.default_rng(seed), 40)
        few.append(_interval(rounds[:4], seed).half_width)
        many.append(_interval(rounds, seed).half_width)
    # Expected ratio about sqrt(10) * t(3) / t(39) = 5; allow for chance.
    assert np.mean(many) < np.mean(few) / 2.5


def test_bootstrap_is_deterministic_per_seed():
    rounds = _synthetic_rounds(np.random.default_rng(5), 6)
    assert _interval(rounds, 7) == _interval(rounds, 7)
    assert _interval(rounds, 7) != _interval(rounds, 8)


def test_one_round_has_no_interval_and_the_estimate_is_the_mean_of_centers():
    only = RoundData(4.0)
    interval = bootstrap_mean([np.full(10, 4.0)], [4.0], 0.95, np.random.default_rng(0))
    assert interval == Interval(4.0, 4.0, 4.0, 0.95, 1)
    rounds = [RoundData(4.0), RoundData(6.0), only]
    got = _interval(rounds, 0)
    assert got.estimate == pytest.approx(14.0 / 3)
    assert got.low < got.estimate < got.high


def test_interval_of_a_time_never_goes_below_zero():
    # Two wildly different rounds: t(1) = 12.7 would reach far below zero.
    rounds = [RoundData(1.0), RoundData(9.0)]
    got = _interval(rounds, 0)
    assert got.estimate == 5.0 and got.low == 0.0 and got.high > 9.0


def test_log_mode_gives_a_geometric_mean_interval():
    logs = [math.log(1.4), math.log(1.6), math.log(1.5)]
    reps = [np.full(200, v) for v in logs]
    got = bootstrap_mean(reps, logs, 0.95, np.random.default_rng(0), log=True)
    assert got.estimate == pytest.approx((1.4 * 1.6 * 1.5) ** (1 / 3))
    assert got.low < 1.4 < 1.6 < got.high  # three rounds: a wide interval


def test_bootstrap_rejects_mismatched_inputs():
    with pytest.raises(
        ValueError, match="need one replicate vector per round, got 1 for 2"
    ):
        bootstrap_mean([np.ones(3)], [1.0, 2.0], 0.95, np.random.default_rng(0))


def test_spread_is_range_over_mean():
    assert spread([9.0, 10.0, 11.0]) == pytest.approx(0.2)
    assert spread([5.0]) == 0.0
