"""Full training's config alone: the official recipe as defaults.

Kept apart from the trainer so that reading it (mnas-train checking its
flags) does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from mnas.search_space import MAX_RESOLUTION, MIN_RESOLUTION
from mnas.search_space.validation import (
    check_choice,
    check_int,
    check_real,
    check_text,
)
from mnas.train.data_config import MAX_BATCH_SIZE
from mnas.train.proxy_config import MAX_EPOCHS, MAX_SEED, MAX_STEPS

STRATEGIES = ("default", "mirrored", "tpu")


#: Longest dataset name, directory or TPU address a config takes.
_MAX_PATH = 4096


class FullTrainingConfigError(ValueError):
    """A full-training setting out of its range (one line for the binaries)."""


@dataclasses.dataclass(frozen=True)
class FullTrainingConfig:
    """The official recipe as defaults; ``mnas.train.full`` explains it."""

    epochs: int = 350
    batch_size: int = 1024
    base_learning_rate: float = 0.016  # per 256 images
    warmup_epochs: float = 5.0
    lr_decay_rate: float = 0.97
    lr_decay_epochs: float = 2.4
    rmsprop_decay: float = 0.9
    momentum: float = 0.9
    epsilon: float = 1e-3
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    moving_average_decay: float = 0.9999
    dropout_rate: float | None = None  # None: the architecture's
    strategy: str = "default"
    tpu: str | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    manual_dir: str | None = None
    resolution: int | None = None  # None: the architecture's
    num_train_examples: int | None = None  # None: all
    max_steps_per_epoch: int | None = None  # cap, for smoke tests
    seed: int = 0

    def __post_init__(self) -> None:
        def check(checked: Callable, name: str, *args, **kwargs) -> None:
            value = checked(
                f"training {name}",
                getattr(self, name),
                *args,
                error=FullTrainingConfigError,
                **kwargs,
            )
            object.__setattr__(self, name, value)

        check(check_int, "epochs", 1, MAX_EPOCHS)
        check(check_int, "batch_size", 1, MAX_BATCH_SIZE)
        check(check_real, "base_learning_rate", 0.0, low_open=True)
        check(check_real, "warmup_epochs", 0.0, MAX_EPOCHS)
        check(check_real, "lr_decay_rate", 0.0, 1.0, low_open=True)
        check(check_real, "lr_decay_epochs", 0.0, MAX_EPOCHS, low_open=True)
        for name in ("rmsprop_decay", "momentum", "label_smoothing"):
            check(check_real, name, 0.0, 1.0, high_open=True)
        check(check_real, "moving_average_decay", 0.0, 1.0, high_open=True)
        check(check_real, "epsilon", 0.0, low_open=True)
        check(check_real, "weight_decay", 0.0)
        check(check_real, "dropout_rate", 0.0, 1.0, high_open=True, allow_none=True)
        check(check_choice, "strategy", STRATEGIES)
        check(check_text, "tpu", _MAX_PATH, allow_none=True)
        check(check_text, "dataset", _MAX_PATH)
        for name in ("data_dir", "manual_dir"):
            check(check_text, name, _MAX_PATH, allow_none=True)
        check(check_int, "resolution", MIN_RESOLUTION, MAX_RESOLUTION, allow_none=True)
        check(check_int, "num_train_examples", 1, MAX_STEPS, allow_none=True)
        check(check_int, "max_steps_per_epoch", 1, MAX_STEPS, allow_none=True)
        check(check_int, "seed", 0, MAX_SEED)

    @property
    def learning_rate(self) -> float:
        """Peak rate: 0.016 per 256 images, scaled linearly with the batch."""
        return self.base_learning_rate * self.batch_size / 256.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
