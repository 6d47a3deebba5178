"""Flags of ``mnas-search``, turned into a frozen ``SearchConfig``.

The search's own flags (trials, workers, controller) are defined here; the
proxy task, reward, work directory and deployment resolution come from their
groups, defined along with them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from absl import flags

from mnas.flags.arch import define_search_space_flag
from mnas.flags.common import (
    FLAGS,
    FlagError,
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
    for_search,
)
from mnas.flags.lut import define_latency_source_flag
from mnas.flags.reward import define_reward_flags, reward_config_from_flags
from mnas.latency import LatencyConfig

CONTROLLERS = ("reinforce", "ppo", "random")
EVALUATIONS = ("standalone", "shared")  # as mnas.search.config (imported lazily)
#: --evaluation=shared's defaults where the flags are not given: TuNAS's
#: reward, table latency with the top-k measured, 1,000 architectures, and
#: the space whose uniformly sampled paths learn from each other's weight
#: steps (on the MnasNet space they stay at chance; docs/shared_evaluation.md).
SHARED_DEFAULTS = {
    "reward": "absolute",
    "latency": "verified",
    "num_trials": 1000,
    "search_space": "mnasnet-mbconv",
}
EXECUTORS = ("local", "ray")  # as mnas.search.config (imported lazily)
MAX_TRIALS = 1_000_000
MAX_WORKERS = 256
MAX_TRIAL_RETRIES = 100
#: Bounds of --target_ratio (a candidate 100x faster or slower than the
#: reference is outside any sensible search).
MIN_TARGET_RATIO = 0.01
MAX_TARGET_RATIO = 100.0


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
        "Candidate-evaluating worker processes (with --executor=ray: the most "
        "trials in flight; unset, as many as the cluster's nodes fit).",
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
    define_executor_flags(flag_values)
    flags.DEFINE_float(
        "target_ratio",
        None,
        "Reward target as a latency ratio to the reference model (default "
        "MobileNetV2 1.0 at --deployment_resolution, --latency_reference) timed "
        "in the same rounds as each candidate: 1.0 is 'as fast as MobileNetV2 "
        "here', which survives a change of machine speed. Replaces --target_ms "
        "(the reward's T is 1 and LAT the ratio over this); needs "
        "--latency=measured.",
        flag_values=flag_values,
    )
    define_shared_flags(flag_values)
    flags.DEFINE_float(
        "outputs_interval_s",
        15.0,
        "Rewrite best.json and pareto.png at most this often while the search "
        "runs (and always at its end); 0: after every trial.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "max_consecutive_failures",
        5,
        "Stop the search after this many failed trials in a row (a dead "
        "backend would fail them all), with their common error; 0 never stops.",
        flag_values=flag_values,
    )


def define_executor_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Where candidates are evaluated (docs/many_machines.md)."""
    flags.DEFINE_enum(
        "executor",
        "local",
        list(EXECUTORS),
        "Where candidates are evaluated: local (worker subprocesses of this "
        "machine) or ray (tasks on a Ray cluster; pip install 'mnas[ray]').",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "ray_address",
        None,
        "Ray cluster of --executor=ray: auto (the one this machine joined) or "
        "HEAD_HOST:PORT; unset: RAY_ADDRESS, else a new one on this machine.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "trial_resources",
        "CPU=1",
        "What one trial asks of a Ray node, NAME=AMOUNT,... (CPU, GPU, memory "
        "in bytes, custom resources), e.g. CPU=2,GPU=1.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "trial_retries",
        2,
        "Times a Ray trial runs again after losing its node or worker (node "
        "lost, out of memory) before it fails.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "latency_resource",
        None,
        "Ray resource of the devices that time models (e.g. phone, declared by "
        "ray start --resources on the hosts they are plugged into); unset: "
        "timed in the search process.",
        flag_values=flag_values,
    )


def define_shared_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Weight-sharing evaluation (docs/shared_evaluation.md)."""
    flags.DEFINE_enum(
        "evaluation",
        "standalone",
        list(EVALUATIONS),
        "How a candidate's accuracy is obtained: standalone (trained alone with "
        "the proxy trainer, as MnasNet) or shared (scored with the weights of "
        "one supernet trained along the search, as TuNAS; the top-k are then "
        "trained standalone and measured). shared defaults to --reward=absolute "
        "--latency=verified --num_trials=1000 --search_space=mnasnet-mbconv.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "time_budget_s",
        None,
        "--evaluation=shared: stop sampling after this many seconds, then "
        "verify the top-k (unset: at --num_trials). The warm-ups and the "
        "controller's start are fractions of --num_trials, so set it to what "
        "the budget fits.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "shared_batch_size",
        None,
        "--evaluation=shared: training images per weight step (default 32).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "shared_eval_batch_size",
        None,
        "--evaluation=shared: held-out images a sampled path is scored on "
        "(default 64).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "shared_learning_rate",
        None,
        "--evaluation=shared: peak Adam step of the shared weights (default 0.005).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "shared_resolution",
        None,
        "--evaluation=shared: side in pixels the supernet trains and scores at "
        "(default 16; 0: the proxy data's own). The top-k verification trains "
        "at --proxy_resolution.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "rl_delay",
        None,
        "--evaluation=shared: fraction of --num_trials sampled uniformly before "
        "the controller starts (default 0.25, as TuNAS).",
        flag_values=flag_values,
    )


SHARED_ONLY_FLAGS = (
    "time_budget_s",
    "shared_batch_size",
    "shared_eval_batch_size",
    "shared_learning_rate",
    "shared_resolution",
    "rl_delay",
)
SHARED_FLAG_FIELDS = {
    "shared_batch_size": "batch_size",
    "shared_eval_batch_size": "eval_batch_size",
    "shared_learning_rate": "learning_rate",
    "rl_delay": "rl_delay",
}


def shared_fields_from_flags(flag_values: flags.FlagValues) -> dict[str, Any]:
    """The ``SearchConfig`` fields of the evaluation flags."""
    if flag_values.evaluation != "shared":
        for name in SHARED_ONLY_FLAGS:
            if flag_values[name].present:
                raise FlagError(
                    f"--{name} needs --evaluation=shared (got --evaluation="
                    f"{flag_values.evaluation})"
                )
        return {"evaluation": flag_values.evaluation}
    check_finite(flag_values, "time_budget_s", "shared_learning_rate", "rl_delay")
    budget = flag_values.time_budget_s
    if budget is not None:
        check_range("time_budget_s", budget, 1, 365 * 86400)
    for name in ("shared_batch_size", "shared_eval_batch_size"):
        if flag_values[name].value is not None:
            check_range(name, flag_values[name].value, 1, 4096)
    if flag_values.shared_learning_rate is not None:
        check_positive(flag_values, "shared_learning_rate")
    resolution = flag_values.shared_resolution
    if resolution is not None and resolution != 0:
        check_range("shared_resolution", resolution, 8, 1024)
    if flag_values.rl_delay is not None and not 0 <= flag_values.rl_delay < 1:
        raise FlagError(f"--rl_delay must be in [0, 1), got {flag_values.rl_delay}")
    from mnas.search import SharedConfig

    values = {
        field: flag_values[name].value
        for name, field in SHARED_FLAG_FIELDS.items()
        if flag_values[name].value is not None
    }
    if resolution is not None:
        values["resolution"] = resolution or None
    return {
        "evaluation": "shared",
        "shared": SharedConfig(**values),
        "time_budget_s": budget,
    }


def shared_default(flag_values: flags.FlagValues, name: str):
    """A flag's value, or --evaluation=shared's default when it is not given."""
    if flag_values.evaluation == "shared" and not flag_values[name].present:
        return SHARED_DEFAULTS[name]
    return flag_values[name].value


RAY_ONLY_FLAGS = ("ray_address", "trial_resources", "trial_retries", "latency_resource")


def parse_resources(text: str) -> dict[str, float]:
    """``CPU=2,GPU=1`` as ``{"CPU": 2.0, "GPU": 1.0}``; FlagError otherwise."""
    found: dict[str, float] = {}
    for item in text.split(","):
        name, sep, amount = item.strip().partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = math.nan
        if not sep or not name.strip() or not math.isfinite(value):
            raise FlagError(
                "--trial_resources must be NAME=AMOUNT[,NAME=AMOUNT...] with "
                f"finite amounts, got {text!r}"
            )
        if name.strip() in found:
            raise FlagError(f"--trial_resources names {name.strip()} twice")
        found[name.strip()] = value
    return found


def executor_fields_from_flags(flag_values: flags.FlagValues) -> dict[str, Any]:
    """The ``SearchConfig`` fields of the executor flags."""
    if flag_values.executor != "ray":
        for name in RAY_ONLY_FLAGS:
            if flag_values[name].present:
                raise FlagError(
                    f"--{name} needs --executor=ray (got --executor="
                    f"{flag_values.executor})"
                )
    check_range("trial_retries", flag_values.trial_retries, 0, MAX_TRIAL_RETRIES)
    return {
        "executor": flag_values.executor,
        "ray_address": flag_values.ray_address or None,
        "trial_resources": parse_resources(flag_values.trial_resources),
        "trial_retries": flag_values.trial_retries,
        "latency_resource": flag_values.latency_resource or None,
    }


def max_concurrent_trials(flag_values: flags.FlagValues) -> int | None:
    """--num_workers as the Ray executor's cap on trials in flight: only when
    given (by default the cluster's capacity decides)."""
    return flag_values.num_workers if flag_values["num_workers"].present else None


def search_config_from_flags(
    flag_values: flags.FlagValues, latency: LatencyConfig, lut_path: str | None
):
    """The search's config; ``latency`` and ``lut_path`` come from the latency
    and table flags (the lookup table is used unless --latency=measured)."""
    num_trials = shared_default(flag_values, "num_trials")
    check_range("num_trials", num_trials, 1, MAX_TRIALS)
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
    check_finite(flag_values, "outputs_interval_s")
    check_range("outputs_interval_s", flag_values.outputs_interval_s, 0, 86400)
    executor = executor_fields_from_flags(flag_values)
    evaluation = shared_fields_from_flags(flag_values)
    latency_mode = shared_default(flag_values, "latency")
    reward = reward_config_from_flags(
        flag_values, kind=shared_default(flag_values, "reward")
    )
    target_ratio = flag_values.target_ratio
    if target_ratio is not None:
        check_finite(flag_values, "target_ratio")
        check_range("target_ratio", target_ratio, MIN_TARGET_RATIO, MAX_TARGET_RATIO)
        if latency_mode != "measured":
            raise FlagError(
                "--target_ratio needs --latency=measured (the lookup table predicts "
                f"ms, not a ratio to a reference); got --latency={latency_mode}"
            )
        reward = dataclasses.replace(reward, target_ratio=target_ratio)
    resolution = deployment_resolution_from_flags(flag_values)
    latency = for_search(flag_values, latency, resolution, target_ratio is not None)
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
        num_trials=num_trials,
        num_workers=flag_values.num_workers,
        space=shared_default(flag_values, "search_space"),
        controller_kind=flag_values.controller,
        controller=controller,
        reward=reward,
        data=data,
        trainer=trainer,
        deployment_resolution=resolution,
        latency=latency,
        latency_mode=latency_mode,
        lut_path=lut_path if latency_mode != "measured" else None,
        top_k=flag_values.top_k,
        trial_timeout_s=flag_values.trial_timeout_s,
        max_consecutive_failures=flag_values.max_consecutive_failures or None,
        seed=flag_values.seed,
        outputs_interval_s=flag_values.outputs_interval_s,
        **executor,
        **evaluation,
    )


#: Retired names of mnas-search's flags (the reward's exponents).
RENAMED = {"alpha": "reward_alpha", "beta": "reward_beta"}
