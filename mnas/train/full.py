"""Full training of an architecture with the official MnasNet recipe.

A searched model is only comparable with the published ones when it gets the
same training, so the defaults are the official config (tensorflow/tpu
``mnasnet_main.py``): RMSProp (decay 0.9, momentum 0.9, epsilon 1e-3), a
learning rate of 0.016 per 256 images warmed up linearly over 5 epochs and
multiplied by 0.97 every 2.4 epochs (staircase, counted from step 0), L2
weight decay 1e-5 on every non-batch-norm weight (added to the loss as
``wd * sum(||w||^2 / 2)``), label smoothing 0.1, an exponential moving
average (``tf.train.ExponentialMovingAverage`` with ``num_updates`` = the
step, so its decay is ``min(0.9999, (1 + step) / (10 + step))``) of what the
official code averages: the trainable weights and the batch-norm moving
statistics; batch 1024, 350 epochs.

Differences worth knowing: Keras' RMSprop puts epsilon outside the square
root and starts its mean square at 0 (TF1's RMSProp: inside, and at 1).

Training is resumable: a ``tf.train.Checkpoint`` (model, optimizer, moving
averages, epoch) is written after every epoch through a ``CheckpointManager``
(so a half-written one is never "latest"), and a new run in the same work
directory continues from the latest one; the work directory is claimed and
locked through ``mnas.io.work_dir`` like the searches' (same architecture
and recipe, apart from ``epochs`` and ``max_steps_per_epoch``). At the end the moving-average
weights are saved as an mnas weights folder (``<work_dir>/final``) that
``mnas-eval`` and ``mnas-export`` load.

Data: ``digits`` (the embedded default) and other in-memory proxy sources go
through ``mnas.train.data`` (inputs in [-1, 1], its held-out validation split is
scored); any other dataset (``folder:<path>``, a tfds name such as
``imagenet2012``) is streamed with the official training augmentation
(random-area crop, flip, bicubic resize) and ImageNet mean/std inputs.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnas.io.work_dir import claim_work_dir, remove_checkpoint_temps
from mnas.search_space import ArchSpec
from mnas.train.full_config import FullTrainingConfig

IN_MEMORY_DATASETS = ("digits",)
CHECKPOINT_DIR = "checkpoints"
FINAL_DIR = "final"
# May change between a run and its resumption.
_RESUMABLE_CHANGES = ("epochs", "max_steps_per_epoch")


@dataclasses.dataclass(frozen=True)
class EpochLog:
    epoch: int
    loss: float
    learning_rate: float
    seconds: float


@dataclasses.dataclass(frozen=True)
class FullTrainingResult:
    """What a (possibly resumed) run did; ``accuracy`` is of the EMA weights."""

    start_epoch: int
    epochs: int
    steps: int
    history: tuple[EpochLog, ...]
    accuracy: float | None
    weights_dir: str


class OfficialSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then ``peak * rate ** floor(step / decay)``."""

    def __init__(
        self,
        peak: float,
        steps_per_epoch: int,
        warmup_epochs: float,
        decay_rate: float,
        decay_epochs: float,
    ):
        self.peak = peak
        self.steps_per_epoch = steps_per_epoch
        self.warmup_epochs = warmup_epochs
        self.decay_rate = decay_rate
        self.decay_epochs = decay_epochs

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decay_steps = max(1, int(self.steps_per_epoch * self.decay_epochs))
        warmup_steps = float(int(self.steps_per_epoch * self.warmup_epochs))
        decayed = self.peak * tf.pow(self.decay_rate, tf.floor(step / decay_steps))
        if warmup_steps <= 0:
            return decayed
        return tf.where(step < warmup_steps, self.peak * step / warmup_steps, decayed)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "steps_per_epoch": self.steps_per_epoch,
            "warmup_epochs": self.warmup_epochs,
            "decay_rate": self.decay_rate,
            "decay_epochs": self.decay_epochs,
        }


def make_strategy(config: FullTrainingConfig) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (local GPUs) or ``tpu``."""
    if config.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if config.strategy == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=config.tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.get_strategy()


@dataclasses.dataclass(frozen=True)
class _Data:
    train: Callable[[], tf.data.Dataset]  # one epoch of (images, labels) batches
    steps_per_epoch: int
    num_classes: int
    preprocessing: str
    validation: tuple[np.ndarray, np.ndarray] | None


def _in_memory_data(config: FullTrainingConfig, resolution: int) -> _Data:
    from mnas.train.data import load_proxy_data, scale_pixels
    from mnas.train.data_config import DataConfig

    data = load_proxy_data(
        DataConfig(
            dataset=config.dataset,
            data_dir=config.data_dir,
            manual_dir=config.manual_dir,
            resolution=resolution,
            batch_size=config.batch_size,
            seed=config.seed,
            max_train_examples=config.num_train_examples,
        )
    )
    validation = (scale_pixels(data.validation_images).numpy(), data.validation_labels)
    return _Data(
        lambda: data.train,
        data.steps_per_epoch,
        data.num_classes,
        "mnas",
        validation,
    )


def preprocess_for_train(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Official training augmentation: random crop (8-100% of the area, aspect
    3/4-4/3), bicubic resize, horizontal flip; float [0, 255] output."""
    from mnas.train.evaluation import resize

    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    begin, size, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        min_object_covered=0.1,
        aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
        area_range=(0.08, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, size)
    image = resize(image, image_size, "bicubic")
    image = tf.image.random_flip_left_right(image)
    return tf.reshape(image, [image_size, image_size, 3])


def _streamed_data(config: FullTrainingConfig, resolution: int) -> _Data:
    from mnas.train.evaluation import EvalConfig, normalize, open_source

    source = open_source(
        EvalConfig(
            dataset=config.dataset,
            data_dir=config.data_dir,
            manual_dir=config.manual_dir,
            split="train",
            max_examples=config.num_train_examples,
        )
    )
    steps = source.num_examples // config.batch_size
    if steps < 1:
        raise ValueError(
            f"{source.description} has {source.num_examples} images: fewer than "
            f"one batch of {config.batch_size}"
        )

    def train() -> tf.data.Dataset:
        ds = source.examples.shuffle(
            min(source.num_examples, 16384), seed=config.seed
        ).map(
            lambda encoded, label: (
                normalize(preprocess_for_train(encoded, resolution), "official"),
                label,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return ds.batch(config.batch_size, drop_remainder=True).prefetch(
            tf.data.AUTOTUNE
        )

    return _Data(train, steps, len(source.class_names), "official", None)


def averaged_variables(model: keras.Model) -> list[tf.Variable]:
    """What the official code keeps moving averages of (``get_ema_vars``): the
    trainable weights and the batch-norm moving statistics; not the
    optimizer's slots or step."""
    return [
        w.value
        for w in model.weights
        if w.trainable or w.path.endswith(("moving_mean", "moving_variance"))
    ]


def train(
    spec: ArchSpec,
    config: FullTrainingConfig,
    work_dir: str,
    log: Callable[[str], None] = print,
) -> FullTrainingResult:
    """Trains ``spec`` (resuming from ``work_dir`` if it holds a checkpoint)."""
    resolution = config.resolution or spec.resolution
    spec = spec.replace(resolution=resolution)
    if config.dropout_rate is not None:
        spec = spec.replace(dropout_rate=config.dropout_rate)
    record = {
        "binary": "mnas-train",
        "arch": spec.to_dict(),
        "training": config.to_dict(),
    }
    claimed = claim_work_dir(
        work_dir,
        record,
        resume=True,  # a second run in the same directory continues it
        resumable={f"training.{name}" for name in _RESUMABLE_CHANGES},
        error=ValueError,
    )
    try:
        remove_checkpoint_temps(os.path.join(work_dir, CHECKPOINT_DIR))
        return _train(spec, config, work_dir, resolution, log)
    finally:
        claimed.release()


def _train(
    spec: ArchSpec,
    config: FullTrainingConfig,
    work_dir: str,
    resolution: int,
    log: Callable[[str], None],
) -> FullTrainingResult:
    from mnas.model.builder import build_model
    from mnas.model.weights import WeightsMeta, save_weights

    keras.utils.set_random_seed(config.seed)
    if config.dataset in IN_MEMORY_DATASETS:
        data = _in_memory_data(config, resolution)
    else:
        data = _streamed_data(config, resolution)
    steps = data.steps_per_epoch
    if config.max_steps_per_epoch is not None:
        steps = min(steps, config.max_steps_per_epoch)

    strategy = make_strategy(config)
    with strategy.scope():
        model = build_model(
            spec,
            (resolution, resolution, 3),
            data.num_classes,
            classifier_activation=None,
        )
        schedule = OfficialSchedule(
            config.learning_rate,
            steps,
            config.warmup_epochs,
            config.lr_decay_rate,
            config.lr_decay_epochs,
        )
        optimizer = keras.optimizers.RMSprop(
            learning_rate=schedule,
            rho=config.rmsprop_decay,
            momentum=config.momentum,
            epsilon=config.epsilon,
        )
        optimizer.build(model.trainable_variables)
        averaged = averaged_variables(model)
        ema = tf.train.ExponentialMovingAverage(
            config.moving_average_decay, num_updates=optimizer.iterations
        )
        ema.apply(averaged)  # creates the shadows (equal to the weights now)
        shadows = [ema.average(w) for w in averaged]
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    decayed = [w for w in model.trainable_variables if "_bn/" not in w.path]

    checkpoint = tf.train.Checkpoint(
        model=model, optimizer=optimizer, ema=shadows, epoch=epoch_var
    )
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(work_dir, CHECKPOINT_DIR), max_to_keep=3
    )
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log(
            f"resumed from {manager.latest_checkpoint} (epoch {int(epoch_var.numpy())})"
        )
    start_epoch = int(epoch_var.numpy())

    loss_fn = keras.losses.CategoricalCrossentropy(
        from_logits=True,
        label_smoothing=config.label_smoothing,
        reduction="none",
    )
    global_batch = config.batch_size

    def step_fn(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            per_example = loss_fn(tf.one_hot(labels, data.num_classes), logits)
            loss = tf.nn.compute_average_loss(
                per_example, global_batch_size=global_batch
            )
            if config.weight_decay:
                l2 = tf.add_n([tf.nn.l2_loss(w.value) for w in decayed])
                loss += config.weight_decay * l2 / strategy.num_replicas_in_sync
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        ema.apply(averaged)
        return loss

    @tf.function
    def train_step(images, labels):
        losses = strategy.run(step_fn, args=(images, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    history = []
    for epoch in range(start_epoch, config.epochs):
        began = time.perf_counter()
        dataset = strategy.experimental_distribute_dataset(data.train().take(steps))
        total, count = 0.0, 0
        for images, labels in dataset:
            total += float(train_step(images, labels))
            count += 1
        epoch_var.assign(epoch + 1)
        manager.save(checkpoint_number=epoch + 1)
        entry = EpochLog(
            epoch + 1,
            total / max(1, count),
            float(schedule(optimizer.iterations)),
            time.perf_counter() - began,
        )
        history.append(entry)
        log(
            f"epoch {entry.epoch}/{config.epochs}: loss {entry.loss:.4f}, "
            f"lr {entry.learning_rate:.5f}, {entry.seconds:.1f} s"
        )

    for shadow, weight in zip(shadows, averaged, strict=True):  # EMA weights out.
        weight.assign(shadow)
    accuracy = None
    if data.validation is not None:
        from mnas.train.evaluation import array_batches, keras_predictor, score

        images, labels = data.validation
        accuracy = score(keras_predictor(model), array_batches(images, labels)).top1
        log(f"held-out top-1 of the moving-average weights: {accuracy:.4f}")
    weights_dir = os.path.join(work_dir, FINAL_DIR)
    save_weights(
        model,
        WeightsMeta(
            spec,
            data.num_classes,
            data.preprocessing,
            source=f"mnas-train {work_dir} epoch {int(epoch_var.numpy())}",
            extra={"accuracy": accuracy, "epochs": int(epoch_var.numpy())},
        ),
        weights_dir,
    )
    steps_done = int(optimizer.iterations.numpy())
    if not math.isfinite(sum(e.loss for e in history) if history else 0.0):
        raise FloatingPointError("training loss became NaN or infinite")
    return FullTrainingResult(
        start_epoch,
        int(epoch_var.numpy()),
        steps_done,
        tuple(history),
        accuracy,
        weights_dir,
    )
