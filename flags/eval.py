"""Flags for loading checkpoints and reading evaluation data.

``mnas-eval`` and ``mnas-export`` load the same kinds of checkpoint and read
evaluation data the same way (every evaluation flag starts with ``eval_``, so
``--batch_size`` and ``--dataset`` keep their training meaning everywhere).
"""

from __future__ import annotations

import os
import sys

from absl import flags

from mnas.flags.common import FLAGS, FlagError, check_range, defines, read_json
from mnas.flags.data import define_tfds_flags

#: mnas.train.evaluation's choices, repeated so that --help needs no
#: TensorFlow (tests/flags/test_eval.py checks they agree).
RESIZE_METHODS = ("bicubic", "bilinear")
CROP_PADDING = 32
PREPROCESSINGS = ("official", "mnas")
CHECKPOINT_FORMATS = ("auto", "native", "official")
WEIGHTS_META_FILE = "weights.json"
MAX_EVAL_BATCH_SIZE = 4096


@defines("checkpoint")
def define_checkpoint_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_string(
        "checkpoint",
        None,
        "Weights to load: an mnas weights folder (weights.json + model.weights.h5, "
        "from mnas-train or save_weights) or an official MnasNet TF checkpoint "
        "(prefix or folder). Required by mnas-eval.",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "checkpoint_format",
        "auto",
        list(CHECKPOINT_FORMATS),
        "Checkpoint kind; auto tells them apart by their files and variable names.",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "prefer_ema",
        True,
        "Official checkpoints: load the exponential-moving-average shadows "
        "(as the official evaluation does) when present.",
        flag_values=flag_values,
    )


@defines("eval_dataset")
def define_eval_data_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define_tfds_flags(flag_values)
    flags.DEFINE_string(
        "eval_dataset",
        None,
        "Evaluation data: a tensorflow-datasets name (imagenet2012) or "
        "folder:<path> with one sub-folder per class (sorted names = labels).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "eval_split", "validation", "Split to evaluate.", flag_values=flag_values
    )
    flags.DEFINE_integer(
        "eval_max_examples",
        None,
        "Evaluate only the first N images.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "eval_batch_size", 64, "Images per forward pass.", flag_values=flag_values
    )
    flags.DEFINE_enum(
        "eval_resize_method",
        "bicubic",
        list(RESIZE_METHODS),
        "Resize after the centre crop (see mnas.train.evaluation for which "
        "official version used which).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "eval_crop_padding",
        CROP_PADDING,
        "Centre crop keeps image_size / (image_size + crop_padding) of the "
        "shorter side (official: 32, i.e. 87.5% at 224).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "eval_preprocessing",
        "auto",
        ["auto", *PREPROCESSINGS],
        "Input normalization: official (ImageNet mean/std), mnas (pixels/127.5-1); "
        "auto: what the checkpoint was trained with.",
        flag_values=flag_values,
    )


@defines("progress_every")
def define_eval_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """mnas-eval's flags: checkpoint, evaluation data, progress."""
    define_checkpoint_flags(flag_values)
    define_eval_data_flags(flag_values)
    flags.DEFINE_integer(
        "progress_every",
        10,
        "Print progress every N batches (0: never).",
        flag_values=flag_values,
    )


def check_eval_data_flags(flag_values: flags.FlagValues) -> None:
    """What can be checked before TensorFlow is imported."""
    if not flag_values.eval_dataset:
        raise FlagError("--eval_dataset is required (imagenet2012, folder:<path>...)")
    check_range("eval_batch_size", flag_values.eval_batch_size, 1, MAX_EVAL_BATCH_SIZE)
    if flag_values.eval_max_examples is not None:
        check_range("eval_max_examples", flag_values.eval_max_examples, 1, 2**31)


def eval_config_from_flags(
    flag_values: flags.FlagValues, image_size: int, checkpoint_preprocessing: str
):
    """An ``mnas.train.EvalConfig`` from the ``--eval_*`` flags (imports
    TensorFlow); ``auto`` preprocessing becomes the checkpoint's own."""
    check_eval_data_flags(flag_values)
    from mnas.train import EvalConfig

    preprocessing = flag_values.eval_preprocessing
    if preprocessing == "auto":
        preprocessing = checkpoint_preprocessing
    return EvalConfig(
        dataset=flag_values.eval_dataset,
        data_dir=flag_values.data_dir,
        manual_dir=flag_values.manual_dir,
        split=flag_values.eval_split,
        image_size=image_size,
        crop_padding=flag_values.eval_crop_padding,
        resize_method=flag_values.eval_resize_method,
        preprocessing=preprocessing,
        batch_size=flag_values.eval_batch_size,
        max_examples=flag_values.eval_max_examples,
    )


def check_weights_folder(path: str) -> None:
    """A native weights folder's ``weights.json`` must be a JSON object with an
    ``arch`` object and a ``num_classes`` integer (WeightsError naming it)."""
    from mnas.model import WeightsError

    meta = os.path.join(path, WEIGHTS_META_FILE)
    if not (os.path.isdir(path) and os.path.lexists(meta)):
        return
    data = read_json(meta, "weights file", WeightsError)
    if not (
        isinstance(data, dict)
        and isinstance(data.get("arch"), dict)
        and isinstance(data.get("num_classes"), int)
    ):
        raise WeightsError(
            f"weights file {meta!r} must hold a JSON object with an 'arch' object "
            "and an integer 'num_classes'"
        )


def load_checkpoint_from_flags(flag_values: flags.FlagValues, spec):
    """``mnas.model.load_any`` for --checkpoint; errors name the checkpoint
    (a file TensorFlow cannot read becomes a CheckpointError)."""
    from mnas.model import CheckpointError, load_any

    path = flag_values.checkpoint
    check_weights_folder(path)
    try:
        return load_any(
            path,
            spec,
            checkpoint_format=flag_values.checkpoint_format,
            num_classes=flag_values.num_classes,
            prefer_ema=flag_values.prefer_ema,
        )
    except Exception as error:
        tf = sys.modules.get("tensorflow")
        if tf is None or not isinstance(error, tf.errors.OpError):
            raise
        raise CheckpointError(
            f"cannot read checkpoint {path!r}: {error.message}"
        ) from None


#: Retired names of mnas-eval's flags (now shared with mnas-export).
RENAMED = {
    "dataset": "eval_dataset",
    "split": "eval_split",
    "max_examples": "eval_max_examples",
    "batch_size": "eval_batch_size",
    "resize_method": "eval_resize_method",
    "crop_padding": "eval_crop_padding",
    "preprocessing": "eval_preprocessing",
}
