"""Flags of ``mnas-train`` (full training with the official recipe), turned
into a frozen ``mnas.train.FullTrainingConfig``.

Defaults are the official config; ``--epochs`` is full-training epochs (the
proxy task's are ``--proxy_epochs``, a DNAS search's ``--search_epochs``).
"""

from __future__ import annotations

import math

from absl import flags

from mnas.flags.arch import define_arch_flags
from mnas.flags.common import (
    FLAGS,
    FlagError,
    check_finite,
    check_positive,
    check_range,
    check_work_dir,
    define_work_dir_flag,
    defines,
    flag_dict,
)
from mnas.flags.data import MAX_EPOCHS, check_batch_size, define_training_data_flags
from mnas.train import STRATEGIES, FullTrainingConfig

#: FullTrainingConfig fields set from the flag of the same name.
SAME_NAMED_FIELDS = (
    "epochs",
    "base_learning_rate",
    "warmup_epochs",
    "lr_decay_rate",
    "lr_decay_epochs",
    "weight_decay",
    "label_smoothing",
    "moving_average_decay",
    "strategy",
    "tpu",
    "dataset",
    "data_dir",
    "manual_dir",
    "resolution",
    "num_train_examples",
    "max_steps_per_epoch",
    "seed",
)


@defines("epochs")
def define_train_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define_arch_flags(flag_values)
    define_work_dir_flag(flag_values)
    define_training_data_flags(flag_values)
    flags.DEFINE_integer(
        "epochs", 350, "Full-training epochs.", flag_values=flag_values
    )
    flags.DEFINE_float(
        "base_learning_rate",
        0.016,
        "Learning rate per 256 images.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "warmup_epochs",
        5.0,
        "Linear learning-rate warm-up epochs.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "lr_decay_rate", 0.97, "Staircase decay factor.", flag_values=flag_values
    )
    flags.DEFINE_float(
        "lr_decay_epochs", 2.4, "Epochs between decays.", flag_values=flag_values
    )
    flags.DEFINE_float(
        "weight_decay",
        1e-5,
        "L2 weight decay (non-batch-norm weights).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "label_smoothing", 0.1, "Label smoothing.", flag_values=flag_values
    )
    flags.DEFINE_float(
        "moving_average_decay",
        0.9999,
        "Weight EMA decay (0: off).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "dropout_rate",
        None,
        "Overrides the architecture's dropout, in [0, 1).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "strategy",
        "default",
        list(STRATEGIES),
        "tf.distribute strategy.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "tpu",
        None,
        "TPU name or address for --strategy=tpu.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_train_examples",
        None,
        "Use only the first N examples.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "max_steps_per_epoch",
        None,
        "Cap on steps per epoch (smoke tests).",
        flag_values=flag_values,
    )


def full_training_config_from_flags(flag_values: flags.FlagValues):
    """The ``FullTrainingConfig`` of the flags (imports TensorFlow once the
    flags and the work directory's config.json are checked)."""
    if not flag_values.work_dir:
        raise FlagError("--work_dir is required")
    check_work_dir(flag_values.work_dir)
    check_range("epochs", flag_values.epochs, 1, MAX_EPOCHS)
    check_batch_size(flag_values)
    check_finite(
        flag_values,
        "base_learning_rate",
        "warmup_epochs",
        "lr_decay_rate",
        "lr_decay_epochs",
        "weight_decay",
        "label_smoothing",
        "moving_average_decay",
        "dropout_rate",
    )
    check_positive(flag_values, "base_learning_rate", "lr_decay_epochs")
    check_range("weight_decay", flag_values.weight_decay, 0.0, math.inf)
    # A warm-up longer than the run is allowed (short smoke runs keep the
    # recipe's 5 epochs).
    check_range("warmup_epochs", flag_values.warmup_epochs, 0.0, MAX_EPOCHS)
    if not 0.0 < flag_values.lr_decay_rate <= 1.0:
        raise FlagError(
            f"--lr_decay_rate must be in (0, 1], got {flag_values.lr_decay_rate}"
        )
    for name in ("label_smoothing", "moving_average_decay", "dropout_rate"):
        value = flag_values[name].value
        if value is not None and not 0.0 <= value < 1.0:
            raise FlagError(f"--{name} must be in [0, 1), got {value}")
    dropout = flag_values.dropout_rate
    for name in ("num_train_examples", "max_steps_per_epoch"):
        if flag_values[name].value is not None:
            check_range(name, flag_values[name].value, 1, 2**31)
    optional = {}
    if flag_values.batch_size is not None:
        optional["batch_size"] = flag_values.batch_size
    return FullTrainingConfig(
        **flag_dict(flag_values, SAME_NAMED_FIELDS), dropout_rate=dropout, **optional
    )
