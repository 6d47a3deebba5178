"""Flags of the training data and of the proxy task (data + proxy trainer).

``--dataset``, ``--batch_size`` and the tensorflow-datasets folders name the
data a binary trains on (mnas-search, mnas-dnas and mnas-scale --grid_search
train candidates on a proxy task, mnas-train trains one network in full);
the ``--proxy_*`` flags and the rest only shape the proxy task.
"""

from __future__ import annotations

import math
from typing import Any

from absl import flags

from mnas.flags.common import (
    FLAGS,
    FlagError,
    check_finite,
    check_positive,
    check_range,
    define_seed_flag,
    defines,
)
from mnas.search_space import check_text

# The bounds of mnas.train's DataConfig and TrainerConfig come from the
# modules that hold the configs alone (neither imports TensorFlow); the
# other flag groups read them from here.
from mnas.train import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_EXAMPLES,
    MAX_PATH_LENGTH,
    MAX_PROXY_RESOLUTION,
    MAX_SEED,
    MIN_PROXY_RESOLUTION,
    DataConfig,
    TrainerConfig,
)

#: The proxy recipe's epochs (docs/proxy.md).
PROXY_EPOCHS: int = TrainerConfig.epochs


@defines("data_dir")
def define_tfds_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_string(
        "data_dir",
        None,
        "tensorflow-datasets data directory.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "manual_dir",
        None,
        "tensorflow-datasets manual directory (ImageNet archives downloaded by hand).",
        flag_values=flag_values,
    )


@defines("dataset")
def define_training_data_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define_tfds_flags(flag_values)
    define_seed_flag(flag_values)
    flags.DEFINE_string(
        "dataset",
        "digits",
        "Training data: 'digits' (embedded, from scikit-learn), "
        "'cluttered_digits' (embedded, generated from them; much harder: "
        "MnasNet-sized nets need far more than the default proxy epochs, "
        "docs/proxy.md), a tensorflow-datasets name (imagenet2012), or "
        "'folder:PATH' for class-named image folders.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "batch_size",
        None,
        "Training batch size; default: the trainer's (64 on the proxy task, "
        "1024 for mnas-train's official recipe).",
        flag_values=flag_values,
    )


@defines("proxy_resolution")
def define_proxy_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The proxy task: data, split and the proxy trainer's knobs."""
    define_training_data_flags(flag_values)
    flags.DEFINE_integer(
        "proxy_resolution",
        32,
        f"Proxy training resolution, in [{MIN_PROXY_RESOLUTION}, "
        f"{MAX_PROXY_RESOLUTION}].",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "proxy_epochs",
        PROXY_EPOCHS,
        "Proxy training epochs (the first is a learning-rate warm-up).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "learning_rate",
        None,
        "Proxy training peak learning rate (default: the trainer's).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "max_train_examples",
        None,
        "Cap on proxy training examples.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "validation_fraction",
        0.2,
        "Share of the train split held out to score a candidate, in (0, 1).",
        flag_values=flag_values,
    )


def check_batch_size(flag_values: flags.FlagValues) -> None:
    if flag_values.batch_size is not None:
        check_range("batch_size", flag_values.batch_size, 1, MAX_BATCH_SIZE)


def proxy_data_kwargs(flag_values: flags.FlagValues) -> dict[str, Any]:
    """``mnas.train.DataConfig`` keyword arguments of the proxy task.

    ``batch_size`` appears only when given, so a run's ``config.json`` matches
    one written before the flag existed.
    """
    check_range(
        "proxy_resolution",
        flag_values.proxy_resolution,
        MIN_PROXY_RESOLUTION,
        MAX_PROXY_RESOLUTION,
    )
    check_batch_size(flag_values)
    if flag_values.max_train_examples is not None:
        check_range(
            "max_train_examples", flag_values.max_train_examples, 1, MAX_EXAMPLES
        )
    check_range("seed", flag_values.seed, 0, MAX_SEED)
    check_text("--dataset", flag_values.dataset, MAX_PATH_LENGTH, error=FlagError)
    dataset = flag_values.dataset.strip()
    if not dataset:
        raise FlagError("--dataset must not be empty")
    if dataset.startswith("folder:") and not dataset[len("folder:") :].strip():
        raise FlagError("--dataset=folder: must be followed by a directory path")
    fraction = flag_values.validation_fraction
    if not (math.isfinite(fraction) and 0.0 < fraction < 1.0):
        raise FlagError(f"--validation_fraction must be in (0, 1), got {fraction}")
    data = {
        "dataset": flag_values.dataset,
        "data_dir": flag_values.data_dir,
        "manual_dir": flag_values.manual_dir,
        "resolution": flag_values.proxy_resolution,
        "validation_fraction": fraction,
        "max_train_examples": flag_values.max_train_examples,
        "seed": flag_values.seed,
    }
    if flag_values.batch_size is not None:
        data["batch_size"] = flag_values.batch_size
    return data


def proxy_trainer_kwargs(flag_values: flags.FlagValues) -> dict[str, Any]:
    """``mnas.train.TrainerConfig`` keyword arguments of the proxy task (no
    seed: each loop seeds its trainer itself). ``learning_rate`` only when
    given."""
    check_range("proxy_epochs", flag_values.proxy_epochs, 1, MAX_EPOCHS)
    trainer: dict[str, Any] = {"epochs": flag_values.proxy_epochs}
    check_finite(flag_values, "learning_rate")
    check_positive(flag_values, "learning_rate")
    if flag_values.learning_rate is not None:
        trainer["learning_rate"] = flag_values.learning_rate
    return trainer


def data_config_from_flags(flag_values: flags.FlagValues):
    """The proxy task's ``mnas.train.DataConfig``."""
    return DataConfig(**proxy_data_kwargs(flag_values))


def trainer_config_from_flags(flag_values: flags.FlagValues):
    """The proxy task's seeded ``mnas.train.TrainerConfig``."""
    return TrainerConfig(seed=flag_values.seed, **proxy_trainer_kwargs(flag_values))
