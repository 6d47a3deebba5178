"""Flags of ``mnas-search``, turned into a frozen ``SearchConfig``.

The search's own flags (trials, workers, controller) are defined here; the
proxy task, reward, work directory and deployment resolution come from their
groups, defined along with them.
"""

from __future__ import annotations

import math
import time

from absl import flags

from mnas.flags.arch import define_search_space_flag
from mnas.flags.common import (
    FLAGS,
    check_finite,
    check_positive,
    check_range,
    define_resume_flag,
    define_work_dir_flag,
    defines,
)
from mnas.flags.data import (
    data_config_from_flags,
    define_proxy_flags,
    trainer_config_from_flags,
)
from mnas.flags.latency import (
    define_deployment_resolution_flag,
    deployment_resolution_from_flags,
)
from mnas.flags.lut import define_latency_source_flag
from mnas.flags.reward import define_reward_flags, reward_config_from_flags
from mnas.latency import LatencyConfig

CONTROLLERS = ("reinforce", "ppo", "random")
MAX_TRIALS = 1_000_000
MAX_WORKERS = 256


@defines("num_trials")
def define_search_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define_work_dir_flag(flag_values)
    define_resume_flag(flag_values)
    define_search_space_flag(flag_values)
    define_proxy_flags(flag_values)
    define_reward_flags(flag_values)
    define_deployment_resolution_flag(flag_values)
    define_latency_source_flag(flag_values)
    flags.DEFINE_integer(
        "num_trials", 10, "Candidates to evaluate in all.", flag_values=flag_values
    )
    flags.DEFINE_integer(
        "num_workers",
        1,
        "Candidate-evaluating worker processes.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "top_k",
        3,
        "Best architectures kept as .tflite and printed.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "trial_timeout_s",
        1800.0,
        "A candidate running longer fails.",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "controller",
        "reinforce",
        list(CONTROLLERS),
        "Controller kind.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "controller_batch_size",
        4,
        "Rewards per controller update.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "controller_learning_rate",
        None,
        "Controller Adam step size (default per algorithm).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "entropy_weight",
        None,
        "Controller entropy bonus (default per algorithm).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "max_consecutive_failures",
        5,
        "Stop the search after this many failed trials in a row (a dead "
        "backend would fail them all), with their common error; 0 never stops.",
        flag_values=flag_values,
    )


def search_config_from_flags(
    flag_values: flags.FlagValues, latency: LatencyConfig, lut_path: str | None
):
    """The search's config; ``latency`` and ``lut_path`` come from the latency
    and table flags (the lookup table is used unless --latency=measured)."""
    check_range("num_trials", flag_values.num_trials, 1, MAX_TRIALS)
    check_range("num_workers", flag_values.num_workers, 1, MAX_WORKERS)
    check_range("top_k", flag_values.top_k, 1, MAX_TRIALS)
    check_finite(
        flag_values, "trial_timeout_s", "controller_learning_rate", "entropy_weight"
    )
    check_positive(flag_values, "trial_timeout_s", "controller_learning_rate")
    check_range("entropy_weight", flag_values.entropy_weight or 0.0, 0, math.inf)
    check_range(
        "max_consecutive_failures", flag_values.max_consecutive_failures, 0, MAX_TRIALS
    )
    work_dir = flag_values.work_dir or time.strftime("runs/search-%Y%m%d-%H%M%S")
    data = data_config_from_flags(flag_values)
    trainer = trainer_config_from_flags(flag_values)
    from mnas.controller import ControllerConfig
    from mnas.search import SearchConfig

    controller = ControllerConfig(
        batch_size=flag_values.controller_batch_size,
        seed=flag_values.seed,
        learning_rate=flag_values.controller_learning_rate,
        entropy_weight=flag_values.entropy_weight,
    )
    return SearchConfig(
        work_dir=work_dir,
        num_trials=flag_values.num_trials,
        num_workers=flag_values.num_workers,
        space=flag_values.search_space,
        controller_kind=flag_values.controller,
        controller=controller,
        reward=reward_config_from_flags(flag_values),
        data=data,
        trainer=trainer,
        deployment_resolution=deployment_resolution_from_flags(flag_values),
        latency=latency,
        latency_mode=flag_values.latency,
        lut_path=lut_path if flag_values.latency != "measured" else None,
        top_k=flag_values.top_k,
        trial_timeout_s=flag_values.trial_timeout_s,
        max_consecutive_failures=flag_values.max_consecutive_failures or None,
        seed=flag_values.seed,
    )


#: Retired names of mnas-search's flags (the reward's exponents).
RENAMED = {"alpha": "reward_alpha", "beta": "reward_beta"}
