"""mnas-train's flags -> FullTrainingConfig."""

import pytest

from mnas.flags.train import (
    STRATEGIES,
    define_train_flags,
    full_training_config_from_flags,
)


def test_flags_make_the_config_and_defaults_stay_the_recipes(parse):
    from mnas.train import STRATEGIES as LIBRARY_STRATEGIES
    from mnas.train import FullTrainingConfig

    assert STRATEGIES == LIBRARY_STRATEGIES
    default = full_training_config_from_flags(parse(define_train_flags, "--work_dir=w"))
    assert default == FullTrainingConfig()
    config = full_training_config_from_flags(
        parse(
            define_train_flags,
            "--work_dir=w",
            "--epochs=3",
            "--batch_size=32",
            "--warmup_epochs=0.5",
            "--dropout_rate=0.1",
            "--dataset=folder:/x",
            "--resolution=64",
            "--max_steps_per_epoch=2",
            "--strategy=mirrored",
            "--seed=7",
        )
    )
    assert (config.epochs, config.batch_size, config.warmup_epochs) == (3, 32, 0.5)
    assert (config.dropout_rate, config.dataset, config.resolution) == (
        0.1,
        "folder:/x",
        64,
    )
    assert (config.max_steps_per_epoch, config.strategy, config.seed) == (
        2,
        "mirrored",
        7,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--work_dir is required"),
        (["--work_dir=w", "--epochs=0"], "--epochs must be >= 1, got 0"),
        (["--work_dir=w", "--batch_size=0"], "--batch_size must be >= 1, got 0"),
        (["--work_dir=w", "--dropout_rate=1"], "--dropout_rate must be in [0, 1), got 1.0"),
        (["--work_dir=w", "--label_smoothing=nan"],
         "--label_smoothing must be a finite number, got nan"),
        (["--work_dir=w", "--num_train_examples=0"],
         "--num_train_examples must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_bad_train_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        full_training_config_from_flags(parse(define_train_flags, *args))
    assert str(info.value) == message
