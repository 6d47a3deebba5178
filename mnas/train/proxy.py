"""Proxy trainer: trains one candidate briefly and scores it on held-out data.

The reward needs a cheap but honest accuracy signal, so a candidate is trained
for a few proxy epochs (the paper used 5 on ImageNet) and its top-1 accuracy is
measured on the validation split that ``mnas.train.data`` carved from the training
split. A candidate whose loss or weights stop being finite raises
``TrainingDivergedError`` with the reason, so the search loop can record the
trial as FAILED instead of feeding a meaningless reward to the controller.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from mnas.search_space import (
    check_bool,
    check_choice,
    check_int,
    check_real,
)
from mnas.train.data import ProxyData

OPTIMIZERS = ("rmsprop", "sgd", "adam")
SCHEDULES = ("constant", "cosine")
# Bounds of TrainerConfig (mnas.flags.data checks --proxy_epochs against
# MAX_EPOCHS too).
MAX_EPOCHS = 10_000
MAX_STEPS = 2**31
MAX_SEED = 2**32 - 1  # keras.utils.set_random_seed seeds NumPy: 32 bits


class TrainerConfigError(ValueError):
    """A TrainerConfig field of the wrong type or out of range."""


class TrainingDivergedError(RuntimeError):
    """The candidate's loss or weights became NaN or infinite.

    Attributes:
      reason: what went wrong and where, fit for a trial's error field.
      epoch: 1-based epoch in which it happened (None if found after training).
      step: 1-based training step within that epoch, when known.
    """

    def __init__(self, reason: str, epoch: int | None = None, step: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.epoch = epoch
        self.step = step


@dataclass(frozen=True)
class TrainerConfig:
    """How a candidate is trained on the proxy task.

    Defaults follow the paper's recipe (RMSProp with decay 0.9, momentum 0.9,
    epsilon 1e-3; weight decay 1e-5; label smoothing 0.1), with a learning rate
    and cosine decay suited to a few epochs from scratch instead of 350.

    Attributes:
      epochs: proxy training epochs.
      learning_rate: peak learning rate.
      optimizer: one of ``OPTIMIZERS``.
      momentum: momentum of RMSProp and SGD (Adam's beta_1 otherwise).
      rmsprop_rho: RMSProp's moving-average decay.
      epsilon: optimizer epsilon (RMSProp and Adam).
      weight_decay: decoupled weight decay applied by the optimizer.
      label_smoothing: smoothing of the one-hot targets.
      schedule: ``'constant'``, or ``'cosine'`` decay to 0 over all steps.
      warmup_epochs: linear warm-up from 0 to ``learning_rate`` first (the
        paper warms up for 5 of 350 epochs); lets short runs use a higher rate.
      steps_per_epoch: cap on training steps per epoch (None: a full pass).
      bn_recalibration_images: unaugmented training images over which
        batch-norm statistics are re-estimated before each evaluation; 0 off.
      seed: seeds Keras, NumPy, Python and TF randomness before training.
      jit_compile: XLA-compile the train step; off because compiling each new
        candidate costs more than it saves on a few short epochs.
      verbose: Keras ``fit`` verbosity (0 silent).
    """

    epochs: int = 5
    learning_rate: float = 0.008
    optimizer: str = "rmsprop"
    momentum: float = 0.9
    rmsprop_rho: float = 0.9
    epsilon: float = 1e-3
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    steps_per_epoch: int | None = None
    bn_recalibration_images: int = 512
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
        check(check_real, "warmup_epochs", 0.0, self.epochs, high_open=True)
        for name in ("momentum", "rmsprop_rho", "label_smoothing"):
            check(check_real, name, 0.0, 1.0, high_open=True)
        check(check_real, "epsilon", 0.0, low_open=True)
        check(check_real, "weight_decay", 0.0)
        check(check_int, "steps_per_epoch", 1, MAX_STEPS, allow_none=True)
        check(check_int, "bn_recalibration_images", 0, MAX_STEPS)
        check(check_int, "seed", 0, MAX_SEED)
        check(check_bool, "jit_compile")
        check(check_int, "verbose", 0, 2)


@dataclass(frozen=True)
class EpochStats:
    """One epoch's training and held-out metrics."""

    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """What the reward and the trial journal need from one proxy training.

    ``accuracy`` is top-1 on the held-out validation split after the last
    epoch; ``loss`` is the (label-smoothed) loss on that split.
    ``wall_time_s`` covers training, tracing (most of the first epoch on a
    fresh candidate), batch-norm recalibration and the per-epoch evaluations.
    """

    accuracy: float
    loss: float
    epochs: int
    steps: int
    examples_seen: int
    wall_time_s: float
    history: tuple[EpochStats, ...]

    def to_dict(self) -> dict:
        """Plain JSON-ready form for the trial journal."""
        return asdict(self)


def train_and_evaluate(
    model: keras.Model, data: ProxyData, config: TrainerConfig
) -> TrainResult:
    """Compiles and trains ``model`` on ``data.train``, scores ``data.validation``.

    The model's weights are used as built; seed its construction too (for
    example with ``keras.utils.set_random_seed``) for a reproducible trial.
    Softmax outputs and logits are both accepted.

    Raises:
      TrainingDivergedError: the loss or the weights stopped being finite.
      ValueError: the model's input or output shape does not fit the data.
    """
    _check_shapes(model, data)
    keras.utils.set_random_seed(config.seed)
    steps = data.steps_per_epoch
    if config.steps_per_epoch is not None:
        steps = min(steps, config.steps_per_epoch)
    model.compile(
        optimizer=_make_optimizer(config, steps_per_epoch=steps),
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=not _outputs_probabilities(model),
            label_smoothing=config.label_smoothing,
        ),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=config.jit_compile,
    )
    # Creating the slots now spares fit() a second trace of the train step
    # (it retraces when variables appear during the first): about 40% of the
    # start-up time of a MnasNet-sized candidate.
    model.optimizer.build(model.trainable_variables)
    one_hot = _one_hot(data.num_classes)
    # Each fit() call below starts a new iterator: the next seeded shuffle.
    train = data.train.repeat().map(one_hot)
    validation = data.validation.map(one_hot)
    calibration = None
    if config.bn_recalibration_images:
        calibration = data.representative_images(config.bn_recalibration_images)
    guard = _DivergenceGuard()
    stats: list[EpochStats] = []
    start = time.perf_counter()
    for epoch in range(config.epochs):
        epoch_start = time.perf_counter()
        fitted = model.fit(
            train,
            initial_epoch=epoch,
            epochs=epoch + 1,
            steps_per_epoch=steps,
            shuffle=False,  # The dataset shuffles itself (seeded).
            callbacks=[guard],
            verbose=config.verbose,
        )
        if guard.reason is not None:
            raise TrainingDivergedError(guard.reason, guard.epoch, guard.step)
        if calibration is not None:
            recalibrate_batch_norm(model, calibration)
        scores = model.evaluate(validation, verbose=0, return_dict=True)
        if not math.isfinite(scores["loss"]):
            raise TrainingDivergedError(
                f"validation loss became {scores['loss']} after epoch {epoch + 1}",
                epoch + 1,
            )
        stats.append(
            EpochStats(
                epoch=epoch + 1,
                loss=float(fitted.history["loss"][-1]),
                accuracy=float(fitted.history["accuracy"][-1]),
                val_loss=float(scores["loss"]),
                val_accuracy=float(scores["accuracy"]),
                seconds=time.perf_counter() - epoch_start,
            )
        )
    _check_weights(model)
    return TrainResult(
        accuracy=stats[-1].val_accuracy,
        loss=stats[-1].val_loss,
        epochs=len(stats),
        steps=guard.total_steps,
        examples_seen=guard.total_steps * data.train_batch_size,
        wall_time_s=time.perf_counter() - start,
        history=tuple(stats),
    )


def recalibrate_batch_norm(
    model: keras.Model, images: np.ndarray, chunk_size: int = 256
) -> None:
    """Re-estimates batch-norm moving statistics as plain averages over ``images``.

    A few hundred proxy steps leave momentum-0.99 moving averages far from the
    trained network's real statistics, which makes inference-mode accuracy
    near chance however well the candidate trained; ranking candidates on that
    would be noise. Only the moving statistics change, no trained weight.
    The forward passes run eagerly (no trace to pay for), in large chunks
    because each eager call costs a fixed overhead per layer.
    """
    layers = [
        layer
        for layer in _all_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    if not layers or len(images) == 0:
        return
    saved = [layer.momentum for layer in layers]
    for layer in layers:  # Fresh start: a NaN statistic would survive 0 * NaN.
        layer.moving_mean.assign(keras.ops.zeros_like(layer.moving_mean))
        layer.moving_variance.assign(keras.ops.ones_like(layer.moving_variance))
    try:
        seen = 0
        for begin in range(0, len(images), chunk_size):
            chunk = images[begin : begin + chunk_size]
            for layer in layers:  # Running mean weighted by chunk size.
                layer.momentum = seen / (seen + len(chunk))
            model(chunk, training=True)
            seen += len(chunk)
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum


def _all_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """All layers, nested models included."""
    found = []
    for child in getattr(layer, "layers", []):
        found.append(child)
        found.extend(_all_layers(child))
    return found


def _check_shapes(model: keras.Model, data: ProxyData) -> None:
    expected_in = (None, *data.image_shape)
    if tuple(model.input_shape) != expected_in:
        raise ValueError(
            f"model input shape {tuple(model.input_shape)} does not fit the proxy "
            f"data's {expected_in}"
        )
    if tuple(model.output_shape) != (None, data.num_classes):
        raise ValueError(
            f"model output shape {tuple(model.output_shape)} does not fit "
            f"{data.num_classes} classes"
        )


def _outputs_probabilities(model: keras.Model) -> bool:
    """True when the model ends in a softmax, so the loss must not apply one."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", None) == "softmax"


def _one_hot(num_classes: int):
    def convert(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return images, tf.one_hot(labels, num_classes)

    return convert


def _make_optimizer(config: TrainerConfig, steps_per_epoch: int) -> keras.Optimizer:
    lr = _learning_rate(config, steps_per_epoch)
    decay = config.weight_decay or None
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(
            learning_rate=lr,
            rho=config.rmsprop_rho,
            momentum=config.momentum,
            epsilon=config.epsilon,
            weight_decay=decay,
        )
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=lr, momentum=config.momentum, weight_decay=decay
        )
    return keras.optimizers.Adam(
        learning_rate=lr,
        beta_1=config.momentum,
        epsilon=config.epsilon,
        weight_decay=decay,
    )


def _learning_rate(
    config: TrainerConfig, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Constant or cosine-decayed rate, after an optional linear warm-up."""
    total = steps_per_epoch * config.epochs
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "constant" and not warmup:
        return config.learning_rate
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=max(1, total - warmup),
        # alpha=1 keeps the rate flat after warm-up: a constant schedule.
        alpha=1.0 if config.schedule == "constant" else 0.0,
        warmup_target=config.learning_rate,
        warmup_steps=warmup,
    )


class _DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite training loss and says where."""

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None
        self.epoch: int | None = None
        self.step: int | None = None
        self.total_steps = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.total_steps += 1
        loss = (logs or {}).get("loss")
        if loss is None or self.reason is not None:
            return
        value = float(np.asarray(loss))
        if not math.isfinite(value):
            self.reason = (
                f"training loss became {value} at epoch {self._epoch}, step {batch + 1}"
            )
            self.epoch, self.step = self._epoch, batch + 1
            self.model.stop_training = True


def _check_weights(model: keras.Model) -> None:
    for weight in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight.value))):
            raise TrainingDivergedError(
                f"weight '{weight.path}' holds NaN or infinite values after training"
            )
