"""Flags of ``mnas-dnas``, turned into a frozen ``DnasConfig``.

The proxy-data flags carry the same names and meanings as ``mnas-search``'s
(``flags/search.py`` defines them inside ``define_search_flags``, together with
controller flags this binary has no use for, so they are declared here again).
"""

from __future__ import annotations

import os
import time

from absl import flags

from mnas.dnas.loop import LOSSES, SHARINGS, DnasConfig
from mnas.latency.config import DEFAULT_LUT_PATH

# The table mnas-latency --build_lut writes by default for the host backend.
DEFAULT_LUT = DEFAULT_LUT_PATH.format(backend="host", space="mnasnet")


def define_dnas_flags() -> None:
    flags.DEFINE_string(
        "work_dir", None, "Where the search keeps its state; default runs/dnas-<time>."
    )
    flags.DEFINE_bool("resume", False, "Continue the search in --work_dir.")
    flags.DEFINE_string("search_space", "mnasnet", "Search space name.")
    flags.DEFINE_enum(
        "sharing",
        "block",
        list(SHARINGS),
        "block: MnasNet's per-block choices; "
        "layer: FBNet's per-layer op/kernel/SE/skip.",
    )
    flags.DEFINE_string(
        "lut",
        DEFAULT_LUT,
        "Latency lookup table (build it with `mnas-latency --build_lut --lut=PATH`).",
    )
    flags.DEFINE_bool(
        "lut_calibrated",
        False,
        "Search with the table's affine calibration instead of the raw sum of "
        "entries (best.json reports both predictions).",
    )
    flags.DEFINE_enum(
        "loss",
        "fbnet",
        list(LOSSES),
        "fbnet: CE * alpha * log(LAT)^beta; proxyless: CE + lambda * LAT / target_ms.",
    )
    flags.DEFINE_float("alpha", 0.2, "FBNet loss scale alpha.")
    flags.DEFINE_float("beta", 0.6, "FBNet latency exponent beta (latency pressure).")
    flags.DEFINE_float(
        "lam", 0.1, "ProxylessNAS latency weight lambda (latency pressure)."
    )
    flags.DEFINE_float(
        "target_ms", 7.0, "Latency normaliser T of the proxyless loss, in ms."
    )
    flags.DEFINE_integer("epochs", 5, "Search epochs (weights, then theta, each).")
    flags.DEFINE_integer("warmup_epochs", 1, "First epochs train weights only.")
    flags.DEFINE_float("initial_temperature", 5.0, "Gumbel-softmax temperature tau0.")
    flags.DEFINE_float("temperature_decay", 0.045, "tau = tau0 * exp(-decay * epoch).")
    flags.DEFINE_integer("search_batch_size", 32, "Supernet batch size.")
    flags.DEFINE_float("weight_learning_rate", 0.05, "Supernet weights' SGD rate.")
    flags.DEFINE_float("theta_learning_rate", 0.05, "Architecture logits' Adam rate.")
    flags.DEFINE_integer(
        "steps_per_epoch", None, "Cap on weight (and theta) steps per epoch."
    )
    flags.DEFINE_integer(
        "final_epochs", 4, "Proxy training epochs of the derived architecture."
    )
    flags.DEFINE_integer("seed", 0, "Seeds the split, the supernet and the sampling.")
    # Proxy task: the same flags as mnas-search's.
    flags.DEFINE_string(
        "dataset",
        "digits",
        "'digits' (embedded, from scikit-learn), a tensorflow-datasets name, or "
        "'folder:PATH' for class-named image folders.",
    )
    flags.DEFINE_string("data_dir", None, "tensorflow-datasets data_dir.")
    flags.DEFINE_string("manual_dir", None, "tensorflow-datasets manual_dir.")
    flags.DEFINE_integer("proxy_resolution", 32, "Proxy training resolution.")
    flags.DEFINE_integer("max_train_examples", None, "Cap on proxy training examples.")
    flags.DEFINE_float(
        "validation_fraction", 0.2, "Share of train held out for the accuracy."
    )
    flags.DEFINE_integer(
        "deployment_resolution", 224, "Resolution at which latency is measured."
    )


def dnas_config_from_flags(flag_values: flags.FlagValues) -> DnasConfig:
    work_dir = flag_values.work_dir or time.strftime("runs/dnas-%Y%m%d-%H%M%S")
    data = {
        "dataset": flag_values.dataset,
        "data_dir": flag_values.data_dir,
        "manual_dir": flag_values.manual_dir,
        "resolution": flag_values.proxy_resolution,
        "validation_fraction": flag_values.validation_fraction,
        "max_train_examples": flag_values.max_train_examples,
        "seed": flag_values.seed,
    }
    return DnasConfig(
        work_dir=work_dir,
        space=flag_values.search_space,
        sharing=flag_values.sharing,
        loss=flag_values.loss,
        alpha=flag_values.alpha,
        beta=flag_values.beta,
        lam=flag_values.lam,
        target_ms=flag_values.target_ms,
        epochs=flag_values.epochs,
        warmup_epochs=flag_values.warmup_epochs,
        initial_temperature=flag_values.initial_temperature,
        temperature_decay=flag_values.temperature_decay,
        batch_size=flag_values.search_batch_size,
        weight_learning_rate=flag_values.weight_learning_rate,
        theta_learning_rate=flag_values.theta_learning_rate,
        steps_per_epoch=flag_values.steps_per_epoch,
        data=data,
        trainer={"epochs": flag_values.final_epochs},
        deployment_resolution=flag_values.deployment_resolution,
        lut_path=os.path.expanduser(flag_values.lut),
        lut_calibrated=flag_values.lut_calibrated,
        seed=flag_values.seed,
    )
