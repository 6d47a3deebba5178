"""Flags of the multi-objective reward (mnas-search, mnas-scale --grid_search)."""

from __future__ import annotations

from absl import flags

from mnas.flags.common import FLAGS, check_finite, defines
from mnas.search import REWARD_KINDS, RewardConfig

#: The reward's target in ms: suits the host backend (MnasNet-A1 runs in
#: about 7 ms there); the paper used 75 ms on a Pixel 1.
DEFAULT_TARGET_MS = 7.0


@defines("reward")
def define_reward_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_enum(
        "reward",
        "soft",
        list(REWARD_KINDS),
        "MnasNet soft/hard or TuNAS absolute.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "target_ms",
        DEFAULT_TARGET_MS,
        "Target latency T of the reward, in ms. The default suits the host "
        "backend (MnasNet-A1 runs in about 7 ms there); the paper used 75 ms on "
        "a Pixel 1. mnas-scale --grid_search scores by the reward only when it "
        "is given.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "reward_alpha",
        None,
        "Reward exponent under the target (default per --reward kind).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "reward_beta",
        None,
        "Reward exponent over the target (default per --reward kind).",
        flag_values=flag_values,
    )


def reward_config_from_flags(
    flag_values: flags.FlagValues, kind: str | None = None
) -> RewardConfig:
    """``kind`` overrides --reward (a binary's own default for it)."""
    check_finite(flag_values, "target_ms", "reward_alpha", "reward_beta")
    return RewardConfig(
        kind=kind or flag_values.reward,
        target_ms=flag_values.target_ms,
        alpha=flag_values.reward_alpha,
        beta=flag_values.reward_beta,
    )
