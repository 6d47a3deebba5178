"""--reward, --target_ms, --reward_alpha/--reward_beta -> RewardConfig."""

import pytest

from mnas.flags.reward import define_reward_flags, reward_config_from_flags
from mnas.search.reward import RewardConfig


def test_defaults_and_given_exponents(parse):
    assert reward_config_from_flags(parse(define_reward_flags)) == RewardConfig(
        "soft", 7.0
    )
    config = reward_config_from_flags(
        parse(
            define_reward_flags,
            "--reward=hard",
            "--target_ms=75",
            "--reward_alpha=-0.1",
            "--reward_beta=-0.5",
        )
    )
    assert config == RewardConfig("hard", 75.0, -0.1, -0.5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--reward_alpha=nan"], "--reward_alpha must be a finite number, got nan"),
        (["--reward_beta=-inf"], "--reward_beta must be a finite number, got -inf"),
        (["--target_ms=inf"], "--target_ms must be a finite number, got inf"),
        (["--target_ms=0"], "target latency must be > 0 ms, got 0.0"),
    ],
)
def test_bad_reward_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        reward_config_from_flags(parse(define_reward_flags, *args))
    assert str(info.value) == message
