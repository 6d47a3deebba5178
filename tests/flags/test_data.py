"""Training-data and proxy-task flags -> DataConfig / TrainerConfig kwargs."""

import pytest

from mnas.flags.data import (
    data_config_from_flags,
    define_proxy_flags,
    define_tfds_flags,
    define_training_data_flags,
    proxy_data_kwargs,
    proxy_trainer_kwargs,
    trainer_config_from_flags,
)


def test_defaults_leave_the_recipe_to_the_configs(parse):
    """Without --batch_size / --learning_rate the kwargs name only what the
    flags own, so the proxy recipe's other values come from the configs."""
    flag_values = parse(define_proxy_flags)
    assert proxy_data_kwargs(flag_values) == {
        "dataset": "digits",
        "data_dir": None,
        "manual_dir": None,
        "resolution": 32,
        "validation_fraction": 0.2,
        "max_train_examples": None,
        "seed": 0,
    }
    assert proxy_trainer_kwargs(flag_values) == {"epochs": 6}


def test_given_values_reach_the_configs(parse):
    flag_values = parse(
        define_proxy_flags,
        "--dataset=folder:/data/x",
        "--proxy_resolution=24",
        "--proxy_epochs=2",
        "--batch_size=8",
        "--learning_rate=0.02",
        "--max_train_examples=100",
        "--validation_fraction=0.3",
        "--seed=5",
    )
    data = data_config_from_flags(flag_values)
    assert (data.dataset, data.resolution, data.batch_size) == ("folder:/data/x", 24, 8)
    assert (data.max_train_examples, data.validation_fraction, data.seed) == (
        100,
        0.3,
        5,
    )
    trainer = trainer_config_from_flags(flag_values)
    assert (trainer.epochs, trainer.learning_rate, trainer.seed) == (2, 0.02, 5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--proxy_resolution=4"], "--proxy_resolution must be >= 8, got 4"),
        (["--proxy_resolution=5000"], "--proxy_resolution must be <= 1024, got 5000"),
        (["--batch_size=0"], "--batch_size must be >= 1, got 0"),
        (
            ["--validation_fraction=1"],
            "--validation_fraction must be in (0, 1), got 1.0",
        ),
        (
            ["--validation_fraction=nan"],
            "--validation_fraction must be in (0, 1), got nan",
        ),
        (
            ["--max_train_examples=0"],
            "--max_train_examples must be >= 1, got 0",
        ),
        (["--seed=-1"], "--seed must be >= 0, got -1"),
        (["--dataset= "], "--dataset must not be empty"),
    ],
)
def test_bad_data_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        proxy_data_kwargs(parse(define_proxy_flags, *args))
    assert str(info.value) == message


@pytest.mark.parametrize(
    "args, message",
    [
        (["--proxy_epochs=0"], "--proxy_epochs must be >= 1, got 0"),
        (["--proxy_epochs=99999"], "--proxy_epochs must be <= 10000, got 99999"),
        (["--learning_rate=-1"], "--learning_rate must be > 0, got -1.0"),
        (["--learning_rate=inf"], "--learning_rate must be a finite number, got inf"),
    ],
)
def test_bad_trainer_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        proxy_trainer_kwargs(parse(define_proxy_flags, *args))
    assert str(info.value) == message


def test_sub_groups(parse):
    tfds = parse(define_tfds_flags, "--data_dir=/d", "--manual_dir=/m")
    assert (tfds.data_dir, tfds.manual_dir) == ("/d", "/m")
    assert "proxy_resolution" not in tfds
    training = parse(define_training_data_flags)
    assert (training.dataset, training.batch_size) == ("digits", None)
    assert "proxy_epochs" not in training and "data_dir" in training
