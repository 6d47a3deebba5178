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
from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from mnas.train.data import ProxyData, scale_pixels
from mnas.train.proxy_config import (
    TrainerConfig,
)

_RMSPROP_EPSILON = 1e-3  # The paper's.
_ADAM_EPSILON = 1e-7  # Keras' default.
_ADD_SUFFIX = "_add"
_BRANCH_BN_SUFFIXES = ("_project_bn", "_bn")


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
class EpochStats:
    """One epoch's training metrics, and held-out ones where it was scored.

    ``val_loss``, ``val_accuracy`` and ``seconds`` are None for an epoch that
    ended without an evaluation (``evaluate_each_epoch`` off); ``seconds`` is
    the wall time since the previous evaluation.
    """

    epoch: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float | None


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
    prepare_model(model, config)
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
    loss = model.loss
    train = data.train.repeat().map(_one_hot(data.num_classes))
    calibration = None
    if config.bn_recalibration_images:
        calibration = data.representative_images(config.bn_recalibration_images)
    guard = _DivergenceGuard()
    stats: list[EpochStats] = []
    start = time.perf_counter()
    if config.evaluate_each_epoch:
        spans = [(epoch, epoch + 1) for epoch in range(config.epochs)]
    else:  # One fit() call: no per-epoch set-up, one evaluation at the end.
        spans = [(0, config.epochs)]
    for first, last in spans:
        span_start = time.perf_counter()
        fitted = model.fit(
            train,
            initial_epoch=first,
            epochs=last,
            steps_per_epoch=steps,
            shuffle=False,  # The dataset shuffles itself (seeded).
            callbacks=[guard],
            verbose=config.verbose,
        )
        if guard.reason is not None:
            raise TrainingDivergedError(guard.reason, guard.epoch, guard.step)
        if calibration is not None:
            recalibrate_batch_norm(model, calibration)
        val_loss, val_accuracy = evaluate(model, data, loss)
        if not math.isfinite(val_loss):
            raise TrainingDivergedError(
                f"validation loss became {val_loss} after epoch {last}", last
            )
        seconds = time.perf_counter() - span_start
        for index, epoch in enumerate(range(first, last)):
            final = epoch == last - 1
            stats.append(
                EpochStats(
                    epoch=epoch + 1,
                    loss=float(fitted.history["loss"][index]),
                    accuracy=float(fitted.history["accuracy"][index]),
                    val_loss=val_loss if final else None,
                    val_accuracy=val_accuracy if final else None,
                    seconds=seconds if final else None,
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


def prepare_model(model: keras.Model, config: TrainerConfig) -> None:
    """Applies the proxy recipe's changes to a freshly built model, in place.

    Each addresses something that only matters for a short run from scratch
    on a small task (measured in docs/proxy.md):

    * ``reset_classifier``: zero the final layer. The builder's classifier
      init (uniform, scaled by 1/classes like the official MnasNet) is
      calibrated for 1000 classes; with 10 it starts the logits at a standard
      deviation of about 5, a loss of 7-8 instead of ln 10, and the first
      epochs go into undoing that.
    * ``zero_init_residual``: zero the scale (gamma) of the last batch norm on
      each residual branch, so every block starts as its shortcut and the
      network trains like a shallow one first. Found by the builder's layer
      names: ``<layer>_add`` joins the branch that ends in
      ``<layer>_project_bn`` (dsconv, mbconv) or ``<layer>_bn`` (conv).
    * ``batch_norm_momentum`` and ``dropout_rate``: override every batch
      norm's momentum and every dropout's rate (head dropout and drop
      connect) for this training only.

    Only training changes: none of these touches the architecture, so the
    trained weights still load into the spec's own deployment build.
    """
    layers = _all_layers(model)
    if config.reset_classifier:
        for weight in model.layers[-1].weights:
            weight.assign(keras.ops.zeros_like(weight))
    if config.zero_init_residual:
        by_name = {layer.name: layer for layer in layers}
        for layer in layers:
            if not layer.name.endswith(_ADD_SUFFIX):
                continue
            prefix = layer.name[: -len(_ADD_SUFFIX)]
            for suffix in _BRANCH_BN_SUFFIXES:
                norm = by_name.get(prefix + suffix)
                if isinstance(norm, keras.layers.BatchNormalization):
                    norm.gamma.assign(keras.ops.zeros_like(norm.gamma))
                    break
    for layer in layers:
        if config.batch_norm_momentum is not None and isinstance(
            layer, keras.layers.BatchNormalization
        ):
            layer.momentum = config.batch_norm_momentum
        if config.dropout_rate is not None and isinstance(layer, keras.layers.Dropout):
            layer.rate = config.dropout_rate


def evaluate(
    model: keras.Model,
    data: ProxyData,
    loss: keras.losses.Loss,
    chunk_size: int = 512,
) -> tuple[float, float]:
    """(loss, top-1 accuracy) on the held-out split, in inference mode.

    Eager forward passes in large chunks: cheaper than tracing ``evaluate``'s
    test step for a model that is scored once.
    """
    images, labels = data.validation_images, data.validation_labels
    outputs = np.concatenate(
        [
            keras.ops.convert_to_numpy(
                model(scale_pixels(images[begin : begin + chunk_size]), training=False)
            )
            for begin in range(0, len(images), chunk_size)
        ]
    )
    targets = np.eye(data.num_classes, dtype=np.float32)[labels]
    value = float(keras.ops.convert_to_numpy(loss(targets, outputs)))
    return value, float(np.mean(np.argmax(outputs, axis=-1) == labels))


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
            epsilon=_RMSPROP_EPSILON if config.epsilon is None else config.epsilon,
            weight_decay=decay,
        )
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=lr, momentum=config.momentum, weight_decay=decay
        )
    return keras.optimizers.Adam(
        learning_rate=lr,
        beta_1=config.momentum,
        epsilon=_ADAM_EPSILON if config.epsilon is None else config.epsilon,
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
