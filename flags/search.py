"""Flags of ``mnas-search``, turned into a frozen ``SearchConfig``."""

from __future__ import annotations

import time

from absl import flags

from mnas.search.reward import REWARD_KINDS, RewardConfig
from mnas.search.runner import SearchConfig


def define_search_flags() -> None:
    flags.DEFINE_string(
        "work_dir",
        None,
        "Where the search keeps its state; default runs/search-<date>-<time>.",
    )
    flags.DEFINE_bool("resume", False, "Continue the search in --work_dir.")
    flags.DEFINE_string("search_space", "mnasnet", "Search space name.")
    flags.DEFINE_integer("num_trials", 10, "Candidates to evaluate in all.")
    flags.DEFINE_integer("num_workers", 1, "Candidate-evaluating worker processes.")
    flags.DEFINE_integer("seed", 0, "Seeds the controller, data split and training.")
    flags.DEFINE_integer("top_k", 3, "Best architectures kept as .tflite and printed.")
    flags.DEFINE_float("trial_timeout_s", 1800.0, "A candidate running longer fails.")
    # Reward.
    flags.DEFINE_enum(
        "reward", "soft", REWARD_KINDS, "MnasNet soft/hard or TuNAS absolute."
    )
    flags.DEFINE_float(
        "target_ms",
        7.0,
        "Target latency T in ms. The default suits the host backend (MnasNet-A1 "
        "runs in about 7 ms there); the paper used 75 ms on a Pixel 1.",
    )
    flags.DEFINE_float(
        "alpha", None, "Reward exponent under the target (default per kind)."
    )
    flags.DEFINE_float(
        "beta", None, "Reward exponent over the target (default per kind)."
    )
    # Controller.
    flags.DEFINE_enum(
        "controller", "reinforce", ["reinforce", "ppo", "random"], "Controller kind."
    )
    flags.DEFINE_integer("controller_batch_size", 4, "Rewards per controller update.")
    flags.DEFINE_float(
        "controller_learning_rate",
        None,
        "Controller Adam step size (default per algorithm).",
    )
    flags.DEFINE_float(
        "entropy_weight", None, "Controller entropy bonus (default per algorithm)."
    )
    # Proxy task.
    flags.DEFINE_string(
        "dataset",
        "digits",
        "'digits' (embedded, from scikit-learn), a tensorflow-datasets name, or "
        "'folder:PATH' for class-named image folders.",
    )
    flags.DEFINE_string("data_dir", None, "tensorflow-datasets data_dir.")
    flags.DEFINE_string("manual_dir", None, "tensorflow-datasets manual_dir.")
    flags.DEFINE_integer("proxy_resolution", 32, "Proxy training resolution.")
    flags.DEFINE_integer("proxy_epochs", 4, "Proxy training epochs.")
    flags.DEFINE_integer(
        "batch_size", None, "Proxy training batch size (trainer default)."
    )
    flags.DEFINE_float(
        "learning_rate", None, "Proxy training peak learning rate (trainer default)."
    )
    flags.DEFINE_integer("max_train_examples", None, "Cap on proxy training examples.")
    flags.DEFINE_float(
        "validation_fraction", 0.2, "Share of train held out for the reward."
    )
    flags.DEFINE_enum(
        "latency",
        "measured",
        ["measured", "predicted", "verified"],
        "How a candidate's latency is obtained: 'measured' on the backend; "
        "'predicted' from the lookup table (--lut, built by `mnas-latency "
        "--build_lut`); 'verified': predicted, and the top-k trials are also "
        "measured, both numbers recorded in the journal.",
    )
    flags.DEFINE_integer(
        "deployment_resolution", 224, "Resolution at which latency is measured."
    )


def search_config_from_flags(
    flag_values: flags.FlagValues,
    latency_backend: str,
    latency_options: dict,
    latency_cache,
    lut_path: str | None = None,
) -> SearchConfig:
    work_dir = flag_values.work_dir or time.strftime("runs/search-%Y%m%d-%H%M%S")
    reward = RewardConfig(
        kind=flag_values.reward,
        target_ms=flag_values.target_ms,
        alpha=flag_values.alpha,
        beta=flag_values.beta,
    )
    data = {
        "dataset": flag_values.dataset,
        "data_dir": flag_values.data_dir,
        "manual_dir": flag_values.manual_dir,
        "resolution": flag_values.proxy_resolution,
        "validation_fraction": flag_values.validation_fraction,
        "max_train_examples": flag_values.max_train_examples,
        "seed": flag_values.seed,
    }
    if flag_values.batch_size is not None:
        data["batch_size"] = flag_values.batch_size
    trainer = {"epochs": flag_values.proxy_epochs, "seed": flag_values.seed}
    if flag_values.learning_rate is not None:
        trainer["learning_rate"] = flag_values.learning_rate
    controller = {"batch_size": flag_values.controller_batch_size}
    if flag_values.controller_learning_rate is not None:
        controller["learning_rate"] = flag_values.controller_learning_rate
    if flag_values.entropy_weight is not None:
        controller["entropy_weight"] = flag_values.entropy_weight
    return SearchConfig(
        work_dir=work_dir,
        num_trials=flag_values.num_trials,
        num_workers=flag_values.num_workers,
        space=flag_values.search_space,
        controller_kind=flag_values.controller,
        controller=controller,
        reward=reward,
        data=data,
        trainer=trainer,
        deployment_resolution=flag_values.deployment_resolution,
        latency_backend=latency_backend,
        latency_options=latency_options,
        latency_cache=latency_cache,
        latency_mode=flag_values.latency,
        lut_path=lut_path if flag_values.latency != "measured" else None,
        top_k=flag_values.top_k,
        trial_timeout_s=flag_values.trial_timeout_s,
        seed=flag_values.seed,
    )
