"""The shared weights: one supernet, trained one sampled path at a time.

``step(trial_id, actions)`` is TuNAS's inner loop for one architecture: a
weight step of the path on one training batch (the path widened by the
warm-ups, ``SharedConfig``), then the trial's own path scored on one held-out
batch with the updated weights. Only the path runs (``Supernet.run_path``:
each candidate op is its own traced function, traced on first use) and only
its variables move (``Supernet.path_variables`` + ``LazyAdam``).

Everything a step draws (the training batch and its augmentation, the
held-out batch, the widening coins, the learning rate) is a function of
(seed, trial id), so the checkpoint holds no random state and a resumed
search replays a step exactly.

Batch norm: weight steps normalize by the batch and update the moving
statistics; held-out scoring normalizes by the held-out batch and leaves them
(they mix every path the supernet has trained, so they describe none).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Iterator, Sequence

import numpy as np

from mnas.search.shared.config import SharedConfig

#: Decision kinds widened to all their choices by the ops warm-up, and to
#: their largest by the filters warm-up.
OP_KINDS = ("conv_op", "kernel", "se_ratio", "skip")
WIDTH_KINDS = ("filters", "layers")
CHECKPOINT_DIR = "supernet"


@dataclasses.dataclass(frozen=True)
class StepResult:
    """One weight step and the held-out score of the trial's path."""

    loss: float
    train_accuracy: float
    accuracy: float | None  # None when not scored (a replayed step)
    learning_rate: float
    widened_ops: int
    widened_widths: int
    timings: dict[str, float]

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss)


@contextlib.contextmanager
def no_graph_rewrites() -> Iterator[None]:
    """Grappler off while the shared weights are trained: on the candidate
    functions' small graphs it costs about a third of the one-off tracing and
    saves nothing measurable per step (docs/search.md). Set once around the
    whole phase: functions are optimized when first called."""
    import logging

    import tensorflow as tf

    saved = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    # Each candidate op is its own traced function, traced once by design;
    # TensorFlow's "triggered tf.function retracing" warning counts them all.
    quiet = _DropRetracingWarnings()
    logger = logging.getLogger("tensorflow")
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
        tf.config.optimizer.set_experimental_options(
            {"disable_meta_optimizer": saved.get("disable_meta_optimizer", False)}
        )


class SharedWeightsError(ValueError):
    """The shared weights cannot be restored."""


class _DropRetracingWarnings:
    def filter(self, record) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


class SharedWeights:
    """The supernet over ``space``, its optimizer and its checkpoint.

    ``trained``: the trials ``0 .. trained - 1`` have had their weight steps
    (in trial order; a resumed search replays the ones after it).
    """

    def __init__(
        self,
        space,
        data,
        config: SharedConfig,
        num_trials: int,
        seed: int = 0,
        checkpoint_dir: str | None = None,
    ) -> None:
        import keras
        import tensorflow as tf

        from mnas.io.work_dir import remove_checkpoint_temps
        from mnas.model.supernet import build_supernet
        from mnas.search.shared.optimizer import LazyAdam
        from mnas.train.data import scale_pixels

        self.config = config
        self.num_trials = num_trials
        self.seed = seed
        self.data = data
        keras.utils.set_random_seed(seed)
        self._images = _resized(data.train_images, config.resolution)
        held_out = _resized(data.validation_images, config.resolution)
        self.net = build_supernet(
            space, "block", self._images.shape[1:], data.num_classes
        )
        # MnasNet's classifier initializer is set for 1,000 classes: with 10
        # the first losses are 10-14 (benchmarks/shared_learning.py). Zeroed,
        # as the standalone proxy does, every path starts at chance.
        for variable in self.net.classifier.weights:
            variable.assign(keras.ops.zeros_like(variable))
        zero_init_residuals(self.net)
        self.decisions = self.net.decisions
        self.optimizer = LazyAdam(self.net.weight_variables)
        self._trained = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._labels = data.train_labels.astype(np.int32)
        self._held_out = scale_pixels(held_out).numpy()
        self._held_out_labels = data.validation_labels.astype(np.int32)
        self._orders: dict[int, np.ndarray] = {}
        self.checkpoint = tf.train.Checkpoint(
            # By position: batch-norm statistics live on helper objects
            # that attribute tracking does not reach (as mnas.dnas does).
            net_variables=list(self.net.variables),
            optimizer=self.optimizer,
            trained=self._trained,
        )
        self.manager = None
        if checkpoint_dir is not None:
            remove_checkpoint_temps(checkpoint_dir)
            self.manager = tf.train.CheckpointManager(
                self.checkpoint, checkpoint_dir, max_to_keep=1
            )
            if self.manager.latest_checkpoint:
                self._restore(self.manager.latest_checkpoint)

    def _restore(self, path: str) -> None:
        """Restores ``path``, refusing one another supernet layout wrote (the
        weight sharing of 2026-12-01 changed it) in one line."""
        import tensorflow as tf

        try:
            self.checkpoint.restore(path).assert_consumed()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            lines = str(error).strip().splitlines()
            first = lines[0] if lines else ""
            raise SharedWeightsError(
                f"the shared weights in {os.path.dirname(path)} do not fit this "
                "supernet (written by another version of mnas?); start a new "
                f"--work_dir ({type(error).__name__}: {first[:200]})"
            ) from error

    # -- state ---------------------------------------------------------------------
    @property
    def trained(self) -> int:
        return int(self._trained.numpy())

    @property
    def checkpointed(self) -> int:
        """``trained`` as of the latest checkpoint (0 without one)."""
        if self.manager is None or self.manager.latest_checkpoint is None:
            return 0
        return int(self.manager.latest_checkpoint.rsplit("-", 1)[-1])

    def save(self, trained: int) -> None:
        """Checkpoints the weights, the optimizer and ``trained``."""
        self._trained.assign(trained)
        if self.manager is not None:
            self.manager.save(checkpoint_number=trained)

    # -- what a trial draws (functions of seed and trial id) -----------------------
    def _rng(self, trial_id: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, trial_id, stream])

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            if len(self._orders) > 2:
                self._orders.pop(min(self._orders))
            self._orders[epoch] = self._rng(epoch, 0).permutation(len(self._labels))
        return self._orders[epoch]

    def train_batch(self, trial_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Trial ``trial_id``'s training batch: the next ``batch_size`` images
        of a seeded shuffle per epoch, augmented as ``DataConfig`` says."""
        from mnas.train.data import scale_pixels

        n = len(self._labels)
        size = min(self.config.batch_size, n)
        index: list[int] = []
        position = trial_id * size
        while len(index) < size:
            epoch, offset = divmod(position + len(index), n)
            take = min(size - len(index), n - offset)
            index.extend(self._order(epoch)[offset : offset + take].tolist())
        images = self._images[index]
        options = self.data.config
        rng = self._rng(trial_id, 1)
        if options.augment:
            images = _pad_crop(images, rng)
        if options.random_flip:
            flip = rng.random(len(images)) < 0.5
            images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
        return scale_pixels(images).numpy(), self._labels[index]

    def held_out_batch(self, trial_id: int) -> tuple[np.ndarray, np.ndarray]:
        """``eval_batch_size`` held-out images drawn for trial ``trial_id``."""
        n = len(self._held_out_labels)
        pick = self._rng(trial_id, 2).choice(
            n, min(self.config.eval_batch_size, n), replace=False
        )
        return self._held_out[pick], self._held_out_labels[pick]

    def widened(self, trial_id: int) -> tuple[set[str], set[str]]:
        """The decisions the warm-ups widen for this trial's weight step:
        (to all their choices, to their largest)."""
        config, n = self.config, self.num_trials
        p_ops = config.widen_probability(trial_id, n, config.ops_warmup)
        p_widths = config.widen_probability(trial_id, n, config.filters_warmup)
        coins = self._rng(trial_id, 3).random((2, len(self.decisions)))
        uniform = {
            d.name
            for d, c in zip(self.decisions, coins[0])
            if d.kind in OP_KINDS and c < p_ops
        }
        largest = {
            d.name
            for d, c in zip(self.decisions, coins[1])
            if d.kind in WIDTH_KINDS and c < p_widths
        }
        return uniform, largest

    # -- steps -------------------------------------------------------------------------
    def step(
        self, trial_id: int, actions: Sequence[int], score: bool = True
    ) -> StepResult:
        """Trial ``trial_id``'s weight step, then (``score``) the held-out
        accuracy of its path. A non-finite loss applies nothing."""
        import tensorflow as tf

        timings: dict[str, float] = {}
        start = time.perf_counter()
        images, labels = self.train_batch(trial_id)
        uniform, largest = self.widened(trial_id)
        path = self.net.path_weights(actions, uniform, largest)
        variables = self.net.path_variables(path)
        rate = self.config.learning_rate_at(trial_id, self.num_trials)
        timings["batch_s"] = time.perf_counter() - start

        start = time.perf_counter()
        with tf.GradientTape() as tape:
            logits = self.net.run_path(images, path, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            )
        gradients = tape.gradient(loss, variables)
        loss_value = float(loss)
        timings["train_s"] = time.perf_counter() - start

        start = time.perf_counter()
        if math.isfinite(loss_value):
            self.optimizer.apply(gradients, variables, rate)
        self._trained.assign(trial_id + 1)
        timings["apply_s"] = time.perf_counter() - start
        train_accuracy = float(np.mean(np.argmax(logits.numpy(), -1) == labels))

        accuracy = None
        if score and math.isfinite(loss_value):
            start = time.perf_counter()
            held_out, held_out_labels = self.held_out_batch(trial_id)
            accuracy = self._accuracy(
                held_out, held_out_labels, self.net.path_weights(actions)
            )
            timings["eval_s"] = time.perf_counter() - start
        return StepResult(
            loss=loss_value,
            train_accuracy=train_accuracy,
            accuracy=accuracy,
            learning_rate=rate,
            widened_ops=len(uniform),
            widened_widths=len(largest),
            timings=timings,
        )

    def _accuracy(self, images, labels, path) -> float:
        from mnas.model.supernet import BATCH_STATS

        logits = self.net.run_path(images, path, training=BATCH_STATS)
        return float(np.mean(np.argmax(logits.numpy(), -1) == labels))

    def score(self, actions: Sequence[int]) -> float:
        """The path's accuracy on the whole held-out split (in batches of
        ``eval_batch_size``, each normalized by itself)."""
        path = self.net.path_weights(actions)
        size = self.config.eval_batch_size
        hits = 0.0
        n = len(self._held_out_labels)
        for begin in range(0, n, size):
            end = min(n, begin + size)
            accuracy = self._accuracy(
                self._held_out[begin:end], self._held_out_labels[begin:end], path
            )
            hits += accuracy * (end - begin)
        return hits / max(1, n)


def shared_space_note(space) -> str | None:
    """One line for a search whose space keeps paths from learning from each
    other's weight steps (measured on the MnasNet space, where the shared
    accuracies of uniform paths stay at chance: docs/shared_evaluation.md),
    None for a space where they learn (one op family, shortcuts that cannot
    be dropped)."""
    families = {op.conv_op for op in space.all_conv_ops()}
    if "none" not in space.skips and families <= {"mbconv"}:
        return None
    return (
        f"note: in the {space.name} space paths differ in conv type or in "
        "whether a layer has a shortcut, and the shared weights of uniformly "
        "sampled paths stay near chance (docs/shared_evaluation.md); "
        "--search_space=mnasnet-mbconv is the space where they learn"
    )


def zero_init_residuals(net) -> list[str]:
    """Zeroes the last batch norm's γ of every candidate in the slots whose
    shortcut always applies (a block's later layers, in a space without the
    ``none`` skip), so each such layer starts as its shortcut: the standalone
    proxy's ``zero_init_residual``. Without it, uniformly sampled paths of
    ``mnasnet-mbconv`` with expansions 3 and 6 stayed near chance for 1,000
    steps; with it they reached 0.96 (docs/shared_evaluation.md). Returns the
    zeroed layers' names."""
    if "none" in net.space.skips:
        return []  # a path may drop the shortcut: a zero branch would be all
    zeroed = []
    for slot, layer in zip(net.slots, net.searchable):
        if slot.slot == 0:  # strides or changes width: no identity shortcut
            continue
        for candidate in layer.candidates:
            bn = candidate.ops.variables.get("project_bn")
            if bn is not None:
                bn.gamma.assign(np.zeros(bn.gamma.shape, np.float32))
                zeroed.append(f"{layer.name}/{candidate.name}")
    return zeroed


def _resized(images: np.ndarray, side: int | None) -> np.ndarray:
    """``uint8`` images at ``side`` x ``side`` (area averaging), or as they are."""
    import tensorflow as tf

    if side is None or images.shape[1:3] == (side, side):
        return images
    resized = tf.image.resize(images, (side, side), method="area")
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


def _pad_crop(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``mnas.train.data``'s augmentation in numpy: pad 1/8 of the side with
    zeros, crop back at a random offset per image."""
    n, height, width = images.shape[:3]
    pad = max(1, height // 8)
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = rng.integers(0, 2 * pad + 1, (n, 2))
    return np.stack(
        [padded[i, y : y + height, x : x + width] for i, (y, x) in enumerate(offsets)]
    )


def checkpoint_dir(work_dir: str) -> str:
    return os.path.join(work_dir, CHECKPOINT_DIR)
