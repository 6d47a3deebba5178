"""Flags of ``mnas-dnas``, turned into a frozen ``DnasConfig``.

The proxy task (data and the derived network's training) uses the same flags
as mnas-search's (``mnas.flags.data``); the supernet's own are here, named so
that none means something else in another binary (``--fbnet_beta``, not the
reward's ``--reward_beta``; ``--search_epochs``, not ``--proxy_epochs``).
"""

from __future__ import annotations

import math
import time

from absl import flags

from mnas.dnas import LOSSES, SHARINGS, WEIGHT_OPTIMIZERS, DnasConfig
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
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    define_proxy_flags,
    proxy_data_kwargs,
    proxy_trainer_kwargs,
)
from mnas.flags.latency import (
    define_deployment_resolution_flag,
    deployment_resolution_from_flags,
)
from mnas.flags.lut import (
    define_lut_calibrated_flag,
    define_lut_flags,
    lut_path_from_flags,
)

#: Largest --steps_per_epoch (as the proxy trainer's cap).
MAX_STEPS = 2**31
#: DnasConfig field -> the flag that sets it.
FIELD_FLAGS = {
    "sharing": "sharing",
    "loss": "loss",
    "alpha": "fbnet_alpha",
    "beta": "fbnet_beta",
    "lam": "proxyless_lambda",
    "target_ms": "proxyless_target_ms",
    "epochs": "search_epochs",
    "warmup_epochs": "search_warmup_epochs",
    "initial_temperature": "initial_temperature",
    "final_temperature": "final_temperature",
    "batch_size": "search_batch_size",
    "theta_fraction": "theta_fraction",
    "weight_optimizer": "weight_optimizer",
    "weight_learning_rate": "weight_learning_rate",
    "theta_learning_rate": "theta_learning_rate",
    "steps_per_epoch": "steps_per_epoch",
    "lut_calibrated": "lut_calibrated",
    "seed": "seed",
}
#: mnas-dnas has no backend flags: its table is the host's unless --lut says
#: otherwise (the one `mnas-latency --build_lut` writes by default).
LUT_BACKEND = "host"


@defines("sharing")
def define_dnas_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define_work_dir_flag(flag_values)
    define_resume_flag(flag_values)
    define_search_space_flag(flag_values)
    define_proxy_flags(flag_values)
    define_lut_flags(flag_values)
    define_lut_calibrated_flag(flag_values)
    define_deployment_resolution_flag(flag_values)
    flags.DEFINE_enum(
        "sharing",
        "block",
        list(SHARINGS),
        "block: MnasNet's per-block choices; "
        "layer: FBNet's per-layer op/kernel/SE/skip.",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "loss",
        "fbnet",
        list(LOSSES),
        "fbnet: CE * fbnet_alpha * log(LAT)^fbnet_beta; proxyless: CE + "
        "proxyless_lambda * LAT / proxyless_target_ms.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "fbnet_alpha", 0.2, "FBNet loss scale alpha (> 0).", flag_values=flag_values
    )
    flags.DEFINE_float(
        "fbnet_beta",
        0.6,
        "FBNet latency exponent beta (>= 0; the latency pressure).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "proxyless_lambda",
        0.1,
        "ProxylessNAS latency weight lambda (>= 0; the latency pressure).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "proxyless_target_ms",
        7.0,
        "Latency normaliser T of the proxyless loss, in ms (> 0).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "search_epochs",
        6,
        "Search epochs (weights, then theta, each).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "search_warmup_epochs",
        1,
        "First search epochs that train the weights only.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "initial_temperature",
        5.0,
        "Gumbel-softmax temperature at the first step.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "final_temperature",
        0.5,
        "Gumbel-softmax temperature at the last step (in (0, "
        "initial_temperature]); it falls geometrically in between.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "search_batch_size", 64, "Supernet batch size.", flag_values=flag_values
    )
    flags.DEFINE_float(
        "theta_fraction",
        0.3,
        "Share of the proxy training split that trains theta (the rest "
        "trains the weights), in (0, 1).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "weight_optimizer",
        "adam",
        list(WEIGHT_OPTIMIZERS),
        "Supernet weights' optimizer (one warm-up epoch, then cosine decay).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "weight_learning_rate",
        0.01,
        "Supernet weights' peak learning rate.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "theta_learning_rate",
        0.2,
        "Architecture logits' Adam rate.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "steps_per_epoch",
        None,
        "Cap on weight (and theta) steps per search epoch.",
        flag_values=flag_values,
    )


def dnas_config_from_flags(flag_values: flags.FlagValues) -> DnasConfig:
    check_finite(
        flag_values,
        "fbnet_alpha",
        "fbnet_beta",
        "proxyless_lambda",
        "proxyless_target_ms",
        "initial_temperature",
        "final_temperature",
        "theta_fraction",
        "weight_learning_rate",
        "theta_learning_rate",
    )
    check_positive(
        flag_values,
        "fbnet_alpha",
        "proxyless_target_ms",
        "initial_temperature",
        "final_temperature",
        "weight_learning_rate",
        "theta_learning_rate",
        "steps_per_epoch",
    )
    for name in ("fbnet_beta", "proxyless_lambda"):
        check_range(name, flag_values[name].value, 0, math.inf)
    check_range(
        "final_temperature",
        flag_values.final_temperature,
        0,
        flag_values.initial_temperature,
    )
    if not 0 < flag_values.theta_fraction < 1:
        raise FlagError(
            f"--theta_fraction must be in (0, 1), got {flag_values.theta_fraction}"
        )
    check_range("search_epochs", flag_values.search_epochs, 1, MAX_EPOCHS)
    check_range(
        "search_warmup_epochs",
        flag_values.search_warmup_epochs,
        0,
        flag_values.search_epochs - 1,
    )
    check_range("search_batch_size", flag_values.search_batch_size, 1, MAX_BATCH_SIZE)
    if flag_values.steps_per_epoch is not None:
        check_range("steps_per_epoch", flag_values.steps_per_epoch, 1, MAX_STEPS)
    work_dir = flag_values.work_dir or time.strftime("runs/dnas-%Y%m%d-%H%M%S")
    space = flag_values.search_space
    fields = {field: flag_values[name].value for field, name in FIELD_FLAGS.items()}
    return DnasConfig(
        work_dir=work_dir,
        space=space,
        data=proxy_data_kwargs(flag_values),
        trainer=proxy_trainer_kwargs(flag_values),
        deployment_resolution=deployment_resolution_from_flags(flag_values),
        lut_path=lut_path_from_flags(flag_values, space, LUT_BACKEND),
        **fields,
    )


#: Retired names of mnas-dnas's flags.
RENAMED = {
    "alpha": "fbnet_alpha",
    "beta": "fbnet_beta",
    "lam": "proxyless_lambda",
    "target_ms": "proxyless_target_ms",
    "epochs": "search_epochs",
    "warmup_epochs": "search_warmup_epochs",
    "final_epochs": "proxy_epochs",
    "temperature_decay": "final_temperature",
}
