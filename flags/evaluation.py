"""Flags for loading checkpoints and for evaluation data, shared by binaries.

``mnas-eval``, ``mnas-export`` and ``mnas-train`` load the same kinds of
checkpoint and read evaluation data the same way; these helpers turn the flag
values into library arguments (``EvalConfig``), so library code never reads
absl FLAGS.
"""

from __future__ import annotations

from absl import flags

from mnas.train.evaluation import CROP_PADDING, RESIZE_METHODS, EvalConfig


def define_checkpoint_flags(required_help: str = "") -> None:
    flags.DEFINE_string(
        "checkpoint",
        None,
        "Weights to load: an mnas weights folder (weights.json + model.weights.h5, "
        "from mnas-train or save_weights) or an official MnasNet TF checkpoint "
        "(prefix or folder)." + required_help,
    )
    flags.DEFINE_enum(
        "checkpoint_format",
        "auto",
        ["auto", "native", "official"],
        "Checkpoint kind; auto tells them apart by their files and variable names.",
    )
    flags.DEFINE_bool(
        "prefer_ema",
        True,
        "Official checkpoints: load the exponential-moving-average shadows "
        "(as the official evaluation does) when present.",
    )


def define_eval_data_flags(
    prefix: str = "", dataset_default: str | None = None
) -> None:
    """``--<prefix>dataset`` and friends; ``prefix`` avoids clashes (``eval_``)."""
    flags.DEFINE_string(
        f"{prefix}dataset",
        dataset_default,
        "Evaluation data: a tensorflow-datasets name (imagenet2012) or "
        "folder:<path> with one sub-folder per class (sorted names = labels).",
    )
    flags.DEFINE_string(f"{prefix}split", "validation", "Split to evaluate.")
    flags.DEFINE_integer(
        f"{prefix}max_examples", None, "Evaluate only the first N images."
    )
    flags.DEFINE_integer(f"{prefix}batch_size", 64, "Images per forward pass.")
    flags.DEFINE_enum(
        f"{prefix}resize_method",
        "bicubic",
        list(RESIZE_METHODS),
        "Resize after the centre crop (see mnas.train.evaluation for which official "
        "version used which).",
    )
    flags.DEFINE_integer(
        f"{prefix}crop_padding",
        CROP_PADDING,
        "Centre crop keeps image_size / (image_size + crop_padding) of the "
        "shorter side (official: 32, i.e. 87.5% at 224).",
    )
    flags.DEFINE_enum(
        f"{prefix}preprocessing",
        "auto",
        ["auto", "official", "mnas"],
        "Input normalization: official (ImageNet mean/std), mnas (pixels/127.5-1); "
        "auto: what the checkpoint was trained with.",
    )


def define_tfds_flags() -> None:
    flags.DEFINE_string("data_dir", None, "tensorflow-datasets data directory.")
    flags.DEFINE_string(
        "manual_dir",
        None,
        "tfds manual directory (ImageNet archives downloaded by hand).",
    )


def eval_config_from_flags(
    flag_values: flags.FlagValues,
    image_size: int,
    checkpoint_preprocessing: str,
    prefix: str = "",
) -> EvalConfig:
    """An ``EvalConfig`` from the flags of ``define_eval_data_flags(prefix)``."""

    def value(name: str):
        return flag_values[f"{prefix}{name}"].value

    preprocessing = value("preprocessing")
    if preprocessing == "auto":
        preprocessing = checkpoint_preprocessing
    return EvalConfig(
        dataset=value("dataset"),
        data_dir=flag_values.data_dir,
        manual_dir=flag_values.manual_dir,
        split=value("split"),
        image_size=image_size,
        crop_padding=value("crop_padding"),
        resize_method=value("resize_method"),
        preprocessing=preprocessing,
        batch_size=value("batch_size"),
        max_examples=value("max_examples"),
    )


def load_checkpoint_from_flags(flag_values: flags.FlagValues, spec):
    """``mnas.model.weights.load_any`` for --checkpoint and the flags of
    :func:`define_checkpoint_flags`; ValueError-derived errors name the problem."""
    from mnas.model.weights import load_any

    return load_any(
        flag_values.checkpoint,
        spec,
        checkpoint_format=flag_values.checkpoint_format,
        num_classes=flag_values.num_classes,
        prefer_ema=flag_values.prefer_ema,
    )
