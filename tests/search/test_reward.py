import math

import pytest

from mnas.search.reward import RewardConfig, compute_reward


def test_soft_reward_trades_five_percent_accuracy_for_double_latency():
    config = RewardConfig("soft", target_ms=75.0)
    at_target = compute_reward(0.75, 75.0, config)
    doubled = compute_reward(0.75, 150.0, config)
    assert at_target == pytest.approx(0.75)
    assert at_target / doubled == pytest.approx(2**0.07)
    assert 1.04 < 2**0.07 < 1.06
    # Under the target, alpha = -0.07 rewards being faster.
    assert compute_reward(0.75, 37.5, config) == pytest.approx(0.75 * 0.5**-0.07)


def test_hard_reward():
    config = RewardConfig("hard", target_ms=10.0)
    assert (config.alpha, config.beta) == (0.0, -1.0)
    assert compute_reward(0.8, 5.0, config) == pytest.approx(0.8)
    assert compute_reward(0.8, 20.0, config) == pytest.approx(0.4)


def test_absolute_reward():
    config = RewardConfig("absolute", target_ms=10.0)
    assert config.beta == -0.10
    assert compute_reward(0.8, 10.0, config) == pytest.approx(0.8)
    assert compute_reward(0.8, 12.0, config) == pytest.approx(0.78)
    assert compute_reward(0.8, 8.0, config) == pytest.approx(0.78)


def test_custom_exponents_override_defaults():
    config = RewardConfig("soft", target_ms=10.0, alpha=0.0, beta=-0.5)
    assert compute_reward(0.5, 40.0, config) == pytest.approx(0.25)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_ms": 0}, "target latency must be > 0 ms, got 0"),
        (
            {"alpha": math.inf},
            "reward alpha must be a number in [-10, 10] or None, got inf",
        ),
        (
            {"beta": "-0.07"},
            "reward beta must be a number in [-10, 10] or None, got '-0.07'",
        ),
        (
            {"beta": 50.0},
            "reward beta must be a number in [-10, 10] or None, got 50.0",
        ),
        ({"target_ms": -5.0}, "target latency must be > 0 ms, got -5.0"),
        ({"target_ms": math.nan}, "target latency must be a finite number, got nan"),
        (
            {"kind": "linear"},
            "reward kind must be one of ('soft', 'hard', 'absolute'), got 'linear'",
        ),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError) as info:
        RewardConfig(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "accuracy, latency", [(math.nan, 1.0), (1.5, 1.0), (0.5, 0.0), (0.5, math.inf)]
)
def test_bad_inputs(accuracy, latency):
    with pytest.raises(ValueError):
        compute_reward(accuracy, latency, RewardConfig())
