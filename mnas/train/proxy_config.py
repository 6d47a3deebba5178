"""How a candidate is trained on the proxy task: the config alone.

Kept apart from the trainer so that reading it (a binary checking its flags,
a search reading its ``config.json``) does not import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mnas.search_space import (
    check_bool,
    check_choice,
    check_int,
    check_real,
)

OPTIMIZERS = ("rmsprop", "sgd", "adam")
SCHEDULES = ("constant", "cosine")
# Bounds of TrainerConfig (mnas.flags.data checks --proxy_epochs against
# MAX_EPOCHS too).
MAX_EPOCHS = 10_000
MAX_STEPS = 2**31
MAX_SEED = 2**32 - 1  # keras.utils.set_random_seed seeds NumPy: 32 bits


class TrainerConfigError(ValueError):
    """A TrainerConfig field of the wrong type or out of range."""


@dataclass(frozen=True)
class TrainerConfig:
    """How a candidate is trained on the proxy task.

    The defaults are the proxy recipe: what makes a MnasNet-sized network,
    from scratch, reach >= 0.95 held-out accuracy on the embedded digits in a
    few hundred steps (each factor measured in docs/proxy.md). The paper's
    ImageNet recipe (RMSProp, momentum 0.9, epsilon 1e-3, learning rate 0.008
    at this batch size, label smoothing 0.1, weight decay 1e-5) left
    candidates at 0.2-0.55 here; it is still available through the fields.

    Attributes:
      epochs: proxy training epochs.
      learning_rate: peak learning rate.
      optimizer: one of ``OPTIMIZERS``.
      momentum: momentum of RMSProp and SGD (Adam's beta_1 otherwise).
      rmsprop_rho: RMSProp's moving-average decay.
      epsilon: optimizer epsilon; None takes the optimizer's own (1e-3 for
        RMSProp, the paper's; Keras' 1e-7 for Adam).
      weight_decay: decoupled weight decay applied by the optimizer.
      label_smoothing: smoothing of the one-hot targets.
      schedule: ``'constant'``, or ``'cosine'`` decay to 0 over all steps.
      warmup_epochs: linear warm-up from 0 to ``learning_rate`` first (the
        paper warms up for 5 of 350 epochs). One epoch of six: the networks
        without residual paths that a uniform sample often holds diverge or
        stall at Adam's 1e-2 from step one (docs/proxy.md).
      steps_per_epoch: cap on training steps per epoch (None: a full pass).
      bn_recalibration_images: unaugmented training images over which
        batch-norm statistics are re-estimated before each evaluation; 0 off
        (the default: with ``batch_norm_momentum`` 0.9 the moving statistics
        already fit, and re-estimating costs an eager pass per evaluation).
      reset_classifier: zero the classifier before training (see
        ``prepare_model``).
      zero_init_residual: start every residual branch at zero (see
        ``prepare_model``).
      batch_norm_momentum: every batch norm's momentum during this training
        (None: as built). A spec's 0.99 (0.999 for MobileNetV2) averages over
        100-1000 steps, longer than a proxy run.
      dropout_rate: every dropout's rate during this training, head dropout
        and drop connect (None: as built).
      evaluate_each_epoch: score the held-out split after every epoch (for
        curves); off, it is scored once, after the last.
      seed: seeds Keras, NumPy, Python and TF randomness before training.
      jit_compile: XLA-compile the train step; off because compiling each new
        candidate costs more than it saves on a few short epochs.
      verbose: Keras ``fit`` verbosity (0 silent).
    """

    epochs: int = 6
    learning_rate: float = 0.01
    optimizer: str = "adam"
    momentum: float = 0.9
    rmsprop_rho: float = 0.9
    epsilon: float | None = None
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    steps_per_epoch: int | None = None
    bn_recalibration_images: int = 0
    reset_classifier: bool = True
    zero_init_residual: bool = True
    batch_norm_momentum: float | None = 0.9
    dropout_rate: float | None = 0.0
    evaluate_each_epoch: bool = False
    seed: int = 0
    jit_compile: bool = False
    verbose: int = 0

    def __post_init__(self) -> None:
        def check(checked: Callable, name: str, *args, **kwargs) -> None:
            value = checked(
                name, getattr(self, name), *args, error=TrainerConfigError, **kwargs
            )
            object.__setattr__(self, name, value)

        check(check_int, "epochs", 1, MAX_EPOCHS)
        check(check_real, "learning_rate", 0.0, low_open=True)
        check(check_choice, "optimizer", OPTIMIZERS)
        check(check_choice, "schedule", SCHEDULES)
        # A warm-up as long as the run or longer is allowed (it then never
        # reaches the peak): short smoke runs keep the recipe's warm-up.
        check(check_real, "warmup_epochs", 0.0, MAX_EPOCHS)
        for name in ("momentum", "rmsprop_rho", "label_smoothing"):
            check(check_real, name, 0.0, 1.0, high_open=True)
        check(check_real, "epsilon", 0.0, low_open=True, allow_none=True)
        check(check_real, "weight_decay", 0.0)
        check(check_int, "steps_per_epoch", 1, MAX_STEPS, allow_none=True)
        check(check_int, "bn_recalibration_images", 0, MAX_STEPS)
        for name in ("reset_classifier", "zero_init_residual", "evaluate_each_epoch"):
            check(check_bool, name)
        for name in ("batch_norm_momentum", "dropout_rate"):
            check(check_real, name, 0.0, 1.0, high_open=True, allow_none=True)
        check(check_int, "seed", 0, MAX_SEED)
        check(check_bool, "jit_compile")
        check(check_int, "verbose", 0, 2)
