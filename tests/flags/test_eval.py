"""Checkpoint and evaluation-data flags -> EvalConfig and a loaded model."""

import json

import pytest

from mnas.flags import eval as eval_flags
from mnas.flags.arch import define_arch_flags
from mnas.flags.eval import (
    RENAMED,
    check_weights_folder,
    define_eval_flags,
    eval_config_from_flags,
    load_checkpoint_from_flags,
)


def test_choices_repeated_for_help_agree_with_the_library():
    from mnas.model.weights import CHECKPOINT_FORMATS
    from mnas.train import CROP_PADDING, PREPROCESSINGS, RESIZE_METHODS

    assert eval_flags.RESIZE_METHODS == RESIZE_METHODS
    assert eval_flags.CROP_PADDING == CROP_PADDING
    assert eval_flags.PREPROCESSINGS == PREPROCESSINGS
    assert eval_flags.CHECKPOINT_FORMATS == CHECKPOINT_FORMATS


def test_flags_make_the_eval_config(parse):
    flag_values = parse(
        define_eval_flags,
        "--eval_dataset=folder:/v",
        "--eval_split=train",
        "--eval_batch_size=5",
        "--eval_max_examples=9",
        "--eval_resize_method=bilinear",
        "--eval_crop_padding=0",
        "--data_dir=/d",
    )
    config = eval_config_from_flags(flag_values, 96, "official")
    assert (config.dataset, config.split, config.image_size) == (
        "folder:/v",
        "train",
        96,
    )
    assert (config.batch_size, config.max_examples) == (5, 9)
    assert (config.resize_method, config.crop_padding) == ("bilinear", 0)
    assert config.preprocessing == "official"  # auto: the checkpoint's own
    assert config.data_dir == "/d"
    mnas = parse(define_eval_flags, "--eval_dataset=x", "--eval_preprocessing=mnas")
    assert eval_config_from_flags(mnas, 96, "official").preprocessing == "mnas"


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--eval_dataset is required (imagenet2012, folder:<path>...)"),
        (["--eval_dataset=x", "--eval_batch_size=0"], "--eval_batch_size must be >= 1, got 0"),
        (["--eval_dataset=x", "--eval_max_examples=0"],
         "--eval_max_examples must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_bad_eval_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        eval_config_from_flags(parse(define_eval_flags, *args), 224, "mnas")
    assert str(info.value) == message


@pytest.mark.parametrize(
    "content, message",
    [
        ("[]", "must hold a JSON object with an 'arch' object and an integer "
         "'num_classes'"),
        ('{"num_classes": 3}', "must hold a JSON object with an 'arch' object"),
        ("{", "is not valid JSON: "),
    ],
)  # fmt: skip
def test_broken_weights_json_is_refused_naming_it(tmp_path, content, message):
    from mnas.model import WeightsError

    (tmp_path / "weights.json").write_text(content)
    with pytest.raises(WeightsError) as info:
        check_weights_folder(str(tmp_path))
    assert str(info.value).startswith("weights file ")
    assert repr(str(tmp_path / "weights.json")) in str(info.value)
    assert message in str(info.value)
    (tmp_path / "weights.json").write_text(json.dumps({"arch": {}, "num_classes": 3}))
    check_weights_folder(str(tmp_path))  # well-formed: load_any checks the rest


def test_garbage_checkpoint_becomes_a_checkpoint_error(parse, tmp_path):
    from mnas.model import CheckpointError

    for suffix in (".index", ".data-00000-of-00001"):
        (tmp_path / f"ckpt{suffix}").write_bytes(b"\x00garbage" * 40)
    flag_values = parse(
        define_eval_flags,
        define_arch_flags,
        f"--checkpoint={tmp_path / 'ckpt'}",
        "--checkpoint_format=official",
    )
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_from_flags(flag_values, None)
    assert str(info.value).startswith(
        f"cannot read checkpoint {str(tmp_path / 'ckpt')!r}: "
    )


def test_retired_names_point_to_the_new_ones(parse):
    flag_values = parse(define_eval_flags)
    assert set(RENAMED).isdisjoint(flag_values)
    assert set(RENAMED.values()) <= set(flag_values)
