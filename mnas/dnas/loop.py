"""Differentiable platform-aware search (FBNet, with ProxylessNAS's loss as an option).

One search in one work directory:

1. The supernet (``mnas.model.supernet``) is trained by alternating epochs' worth of
   steps: weights on 70% of the proxy training split (never the held-out
   split), architecture logits θ on the other 30%. Both steps sample
   Gumbel-softmax weights at a temperature τ that falls geometrically, step
   by step, from ``initial_temperature`` to ``final_temperature`` over the
   search; the first ``warmup_epochs`` train weights only. Weights use Adam
   (one epoch of linear warm-up, then cosine decay), θ Adam at a rate made
   for a few dozen θ steps (see ``DnasConfig``).
2. Loss: FBNet's ``CE · α · log(LAT)^β`` (``loss="fbnet"``) or ProxylessNAS's
   ``CE + λ · LAT / T`` (``"proxyless"``), LAT the lookup table's expected
   latency under the same sampled weights (``mnas.latency.lut.expected``), so θ
   gets gradients through both the network output and the latency term.
   Weights always follow the cross-entropy gradient (for FBNet's loss the
   latency factor is a per-step constant for them, divided out so the weight
   learning rate keeps its meaning).
3. Derive: argmax per decision → ``space.decode_for`` → ``ArchSpec``; the plain
   network is trained briefly on the proxy task (``mnas.train.proxy``) for its
   held-out accuracy, exported as ``.tflite`` at the deployment resolution and
   timed on this host.

Durability: after every epoch a ``tf.train.CheckpointManager`` checkpoint
holds weights, θ, both optimizers, the epoch counter, the Gumbel RNG state
and that epoch's journal record; then the record is appended (fsync'd) to
``epochs.jsonl``. On resume the journal is cut back to, or completed from, the
checkpoint, so a kill at any moment leaves no duplicated or missing epoch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import numpy as np

from mnas.dnas.report import argmax_probabilities, concentration
from mnas.io.jsonl import JsonlLog
from mnas.io.work_dir import claim_work_dir, remove_checkpoint_temps
from mnas.search.outputs import MODELS_DIR, Outputs

JOURNAL_FILE = "epochs.jsonl"
THETA_PLOT = "theta.png"
CHECKPOINT_DIR = "checkpoint"
DERIVED_TFLITE = "derived.tflite"
LOSSES = ("fbnet", "proxyless")
SHARINGS = ("block", "layer")
WEIGHT_OPTIMIZERS = ("adam", "sgd")

# Fields that may change when a search is resumed.
RESUMABLE_FIELDS = frozenset({"work_dir", "lut_path"})


class DnasConfigError(ValueError):
    """A differentiable search cannot start or resume with this configuration."""


@dataclasses.dataclass(frozen=True)
class DnasConfig:
    """Everything that defines a differentiable search; written to ``config.json``.

    ``data`` holds ``mnas.train.data.DataConfig`` kwargs and ``trainer`` those of
    ``mnas.train.proxy.TrainerConfig`` (the derived network's proxy training).

    The defaults are a recipe for a search of a few hundred steps (FBNet runs
    90 epochs; docs/dnas.md has the measurements behind each):

    * weights: Adam at 0.01 with one epoch of linear warm-up, then cosine
      decay to 0, no weight decay (SGD at 0.05 left the supernet at 0.3
      held-out accuracy after 5 epochs, so θ followed noise);
    * batch 64: a supernet step costs mostly fixed graph overhead here, so
      64 images cost about 1.2x what 32 do;
    * a zero classifier and no dropout (``dropout_rate``), as the proxy
      trainer's recipe: a short run from scratch has nothing to regularise;
    * θ: Adam at ``theta_learning_rate`` 0.2 on ``theta_fraction`` 30% of the
      training split (FBNet: 0.01 over tens of thousands of steps; here a run
      takes a few dozen θ steps);
    * τ: geometric from 5 (FBNet's start) to ``final_temperature`` 0.5 over
      the run, step by step (FBNet's ×0.956 per epoch reaches 0.5 only after
      50 epochs; at τ ≈ 4 the sampled mixture barely depends on θ, so the
      weights cannot specialise to the paths θ prefers).

    ``lut_calibrated``: search with the table's fitted affine calibration or
    the raw sum of entries (default; the calibration is affine, so it changes
    only the scale of the latency gradient, and a fit on few noisy whole-model
    timings can squash that scale; best.json reports both predictions).
    """

    work_dir: str
    space: str = "mnasnet"
    sharing: str = "block"
    loss: str = "fbnet"
    alpha: float = 0.2
    beta: float = 0.6
    lam: float = 0.1
    target_ms: float = 7.0
    epochs: int = 6
    warmup_epochs: int = 1
    initial_temperature: float = 5.0
    final_temperature: float = 0.5
    batch_size: int = 64
    theta_fraction: float = 0.3
    weight_optimizer: str = "adam"
    weight_learning_rate: float = 0.01
    weight_momentum: float = 0.9
    weight_decay: float = 0.0
    theta_learning_rate: float = 0.2
    dropout_rate: float = 0.0
    steps_per_epoch: int | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    trainer: dict[str, Any] = dataclasses.field(default_factory=dict)
    deployment_resolution: int = 224
    lut_path: str | None = None
    lut_calibrated: bool = False
    measure: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise DnasConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.sharing not in SHARINGS:
            raise DnasConfigError(
                f"sharing must be one of {SHARINGS}, got {self.sharing!r}"
            )
        if self.epochs < 1:
            raise DnasConfigError(f"epochs must be >= 1, got {self.epochs}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise DnasConfigError(
                f"warmup_epochs must lie in [0, epochs={self.epochs}), "
                f"got {self.warmup_epochs}"
            )
        if self.initial_temperature <= 0:
            raise DnasConfigError(
                f"initial_temperature must be > 0, got {self.initial_temperature}"
            )
        if not 0 < self.final_temperature <= self.initial_temperature:
            raise DnasConfigError(
                f"final_temperature must lie in (0, initial_temperature="
                f"{self.initial_temperature}], got {self.final_temperature}"
            )
        if self.weight_optimizer not in WEIGHT_OPTIMIZERS:
            raise DnasConfigError(
                f"weight_optimizer must be one of {WEIGHT_OPTIMIZERS}, "
                f"got {self.weight_optimizer!r}"
            )
        if not 0.0 < self.theta_fraction < 1.0:
            raise DnasConfigError(
                f"theta_fraction must lie strictly between 0 and 1, "
                f"got {self.theta_fraction}"
            )
        if not 0.0 <= self.dropout_rate < 1.0:
            raise DnasConfigError(
                f"dropout_rate must lie in [0, 1), got {self.dropout_rate}"
            )
        if self.batch_size < 1:
            raise DnasConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.alpha <= 0 or self.beta < 0 or self.lam < 0:
            raise DnasConfigError(
                f"need alpha > 0, beta >= 0 and lam >= 0, got alpha={self.alpha}, "
                f"beta={self.beta}, lam={self.lam}"
            )
        if self.target_ms <= 0:
            raise DnasConfigError(f"target_ms must be > 0, got {self.target_ms}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise DnasConfigError(
                f"steps_per_epoch must be >= 1 or None, got {self.steps_per_epoch}"
            )

    def temperature(self, progress: float) -> float:
        """τ after ``progress`` epochs (fractional: step ``s`` of ``n`` in
        epoch ``e`` is ``e + s / n``): geometric from ``initial_temperature``
        at 0 to ``final_temperature`` at ``epochs``."""
        fraction = min(max(progress / self.epochs, 0.0), 1.0)
        ratio = self.final_temperature / self.initial_temperature
        return self.initial_temperature * ratio**fraction

    @property
    def pressure(self) -> float:
        """The latency weight of the chosen loss (β or λ)."""
        return self.beta if self.loss == "fbnet" else self.lam

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DnasConfig:
        return cls(**data)


class EpochJournal:
    """``epochs.jsonl``: one record per finished epoch, on ``mnas.io.jsonl``
    (a torn last line is cut and noted; a corrupt line before it is refused)."""

    def __init__(self, path: str):
        self.path = path
        self._log: JsonlLog[dict[str, Any]] = JsonlLog.open(path, what="epoch record")
        self.recovery_notes = self._log.recovery_notes

    @property
    def records(self) -> list[dict[str, Any]]:
        return self._log.records

    def append(self, record: Mapping[str, Any]) -> None:
        self._log.append(dict(record))

    def truncate_to(self, records: list[dict[str, Any]]) -> None:
        """Rewrites the file to hold exactly ``records`` (resume repair only)."""
        self._log.rewrite(dict(r) for r in records)


def load_latency(
    lut_path: str | None,
    space,
    sharing: str,
    num_classes: int | None = None,
    calibrated: bool = False,
):
    """``(ExpectedLatency, LatencyPredictor)`` for the table at ``lut_path``."""
    from mnas.latency.errors import LatencyError
    from mnas.latency.lut.expected import ExpectedLatency
    from mnas.latency.lut.predictor import LatencyPredictor
    from mnas.latency.lut.table import LookupTable

    if not lut_path or not os.path.exists(lut_path):
        raise DnasConfigError(
            f"lookup table {lut_path!r} does not exist; build it with "
            f"`mnas-latency --build_lut --lut={lut_path or 'PATH'}`"
        )
    try:
        table = LookupTable.load(lut_path)
        predictor = LatencyPredictor(table, calibrated=calibrated)
        return ExpectedLatency(predictor, space, sharing, num_classes), predictor
    except LatencyError as error:  # a table that cannot serve: a config error
        raise DnasConfigError(str(error)) from None


@dataclasses.dataclass
class _Split:
    w_images: np.ndarray
    w_labels: np.ndarray
    t_images: np.ndarray
    t_labels: np.ndarray


def split_train(data, fraction: float, seed: int) -> _Split:
    """Weights' and θ's shares of the proxy *training* split (seeded)."""
    from mnas.train.data import scale_pixels

    images = scale_pixels(data.train_images).numpy()
    labels = data.train_labels.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_theta = max(1, round(len(labels) * fraction))
    t_idx, w_idx = np.sort(order[:n_theta]), np.sort(order[n_theta:])
    return _Split(images[w_idx], labels[w_idx], images[t_idx], labels[t_idx])


def _steps(n: int, batch: int, cap: int | None) -> int:
    """Full batches of ``min(batch, n)`` in ``n`` examples, at most ``cap``."""
    steps = n // min(batch, n)
    return steps if cap is None else min(steps, cap)


def _batches(images, labels, batch, rng, cap):
    n = len(labels)
    batch = min(batch, n)
    order = rng.permutation(n)
    for s in range(_steps(n, batch, cap)):
        idx = order[s * batch : (s + 1) * batch]
        yield images[idx], labels[idx]


def _weight_optimizer(config: DnasConfig, steps_per_epoch: int):
    """The supernet weights' optimizer: a linear warm-up over the first epoch,
    then cosine decay to 0 at the last step (Adam; or SGD with momentum)."""
    import keras

    total = steps_per_epoch * config.epochs
    warmup = min(steps_per_epoch, total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        max(1, total - warmup),
        warmup_target=config.weight_learning_rate,
        warmup_steps=warmup,
    )
    decay = config.weight_decay or None
    if config.weight_optimizer == "sgd":
        return keras.optimizers.SGD(
            schedule, momentum=config.weight_momentum, weight_decay=decay
        )
    return keras.optimizers.Adam(schedule, weight_decay=decay)


class DnasSearch:
    """One differentiable search in one work directory; ``run()`` does it all.

    ``space``, ``latency`` (a callable probs -> ms tensor), ``predictor`` and
    ``backend`` may be injected (tests); otherwise they come from the config.
    """

    def __init__(
        self,
        config: DnasConfig,
        resume: bool = False,
        space=None,
        latency: Callable | None = None,
        predictor=None,
        backend=None,
        data=None,
        stream: TextIO | None = None,
    ):
        from mnas.search_space import get_search_space

        self.config = config
        self.space = space if space is not None else get_search_space(config.space)
        self.stream = stream or sys.stdout
        # Inputs first: a bad table or dataset must not leave a claimed work
        # directory behind that refuses the corrected rerun.
        if latency is None:
            latency, predictor = load_latency(
                config.lut_path,
                self.space,
                config.sharing,
                calibrated=config.lut_calibrated,
            )
        if data is None:
            from mnas.train.data import load_proxy_data
            from mnas.train.data_config import DataConfig

            data = load_proxy_data(DataConfig(**config.data))
        self.data = data
        self.latency = latency
        self.predictor = predictor
        self.backend = backend
        self.outputs = Outputs(config.work_dir)
        self.work_dir = claim_work_dir(
            config.work_dir,
            config.to_dict(),
            resume,
            RESUMABLE_FIELDS,
            DnasConfigError,
            state_file=JOURNAL_FILE,
        )
        try:
            self._setup()
        except BaseException:
            self.work_dir.release()
            raise

    def _setup(self) -> None:
        import keras
        import tensorflow as tf

        from mnas.model.supernet import build_supernet

        config, data = self.config, self.data
        os.makedirs(self._path(MODELS_DIR), exist_ok=True)
        self.split = split_train(data, config.theta_fraction, config.seed)
        self.weight_steps_per_epoch = _steps(
            len(self.split.w_labels), config.batch_size, config.steps_per_epoch
        )
        self.theta_steps_per_epoch = _steps(
            len(self.split.t_labels), config.batch_size, config.steps_per_epoch
        )

        keras.utils.set_random_seed(config.seed)
        self.net = build_supernet(
            self.space,
            config.sharing,
            data.image_shape,
            data.num_classes,
            dropout_rate=config.dropout_rate,
        )
        # A zero classifier starts the logits at 0 (CE = ln classes): the
        # builder's init is scaled for 1000 classes and starts 10 at a
        # standard deviation of about 5, and Adam then drove the supernet's
        # CE to 10 in its first epoch (docs/dnas.md).
        for weight in self.net.classifier.weights:
            weight.assign(np.zeros(weight.shape, np.float32))
        self.w_vars = self.net.weight_variables
        self.t_vars = self.net.theta_variables
        self.w_opt = _weight_optimizer(config, self.weight_steps_per_epoch)
        self.w_opt.build(self.w_vars)
        self.t_opt = keras.optimizers.Adam(config.theta_learning_rate)
        self.t_opt.build(self.t_vars)
        self.generator = tf.random.Generator.from_seed(config.seed)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.record = tf.Variable("", dtype=tf.string, trainable=False)
        self.checkpoint = tf.train.Checkpoint(
            net=self.net,
            # By position too: batch-norm statistics live on plain helper
            # objects, which attribute tracking does not reach.
            net_variables=list(self.net.variables),
            w_opt=self.w_opt,
            t_opt=self.t_opt,
            generator=self.generator,
            epoch=self.epoch,
            record=self.record,
        )
        remove_checkpoint_temps(self._path(CHECKPOINT_DIR))
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self._path(CHECKPOINT_DIR), max_to_keep=2
        )
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial()
        self.journal = EpochJournal(self._path(JOURNAL_FILE))
        for note in self.journal.recovery_notes:
            print(f"journal recovery: {note}", file=self.stream)
        self._repair_journal()
        self._make_functions()

    def checkpointed_variables(self) -> list:
        """Everything a checkpoint holds (tests compare them across a resume)."""
        return [
            *self.net.variables,
            *self.w_opt.variables,
            *self.t_opt.variables,
            self.generator.state,
            self.epoch,
        ]

    # -- work directory ------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return os.path.join(self.config.work_dir, *parts)

    def close(self) -> None:
        """Unlocks the work directory (``run`` does it when it ends)."""
        self.work_dir.release()

    def _repair_journal(self) -> None:
        """Makes the journal hold exactly epochs 1..checkpoint epoch."""
        done = int(self.epoch.numpy())
        records = [r for r in self.journal.records if r.get("epoch", 0) <= done]
        seen: dict[int, dict] = {}
        for record in records:
            seen.setdefault(int(record["epoch"]), record)
        kept = [seen[e] for e in sorted(seen)]
        if done and done not in seen:  # killed between checkpoint and append
            kept.append(json.loads(self.record.numpy().decode()))
        if kept != self.journal.records:
            self.journal.truncate_to(kept)

    # -- traced steps ----------------------------------------------------------
    def _make_functions(self) -> None:
        import tensorflow as tf

        # No autograph: nothing here branches on tensors, and autograph
        # re-reads this file's source at trace time (an edit during a run
        # broke a trace), besides costing trace time on a big graph.
        config, net = self.config, self.net
        n_w = len(self.w_vars)

        def loss_terms(images, labels):
            weights = net.arch_weights(generator=self.generator)
            logits = net(images, training=True, arch_weights=weights)
            ce = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            )
            lat = tf.cast(self.latency(weights), tf.float32)
            if config.loss == "fbnet":
                factor = config.alpha * tf.pow(
                    tf.math.log(tf.maximum(lat, 1.0 + 1e-3)), config.beta
                )
                total = ce * factor
            else:
                factor = tf.constant(1.0)
                total = ce + config.lam * lat / config.target_ms
            hits = tf.cast(tf.equal(tf.argmax(logits, -1), labels), tf.float32)
            return total, ce, lat, factor, tf.reduce_mean(hits)

        @tf.function(reduce_retracing=True, autograph=False)
        def gradients(images, labels):
            with tf.GradientTape() as tape:
                total, ce, lat, factor, acc = loss_terms(images, labels)
            grads = tape.gradient(total, self.w_vars + self.t_vars)
            w_grads = [g / tf.stop_gradient(factor) for g in grads[:n_w]]
            return (total, ce, lat, acc), w_grads, grads[n_w:]

        @tf.function(autograph=False)
        def apply_weights(grads):
            self.w_opt.apply_gradients(zip(grads, self.w_vars))

        @tf.function(autograph=False)
        def apply_theta(grads):
            self.t_opt.apply_gradients(zip(grads, self.t_vars))

        @tf.function(reduce_retracing=True, autograph=False)
        def predict(images):
            return tf.argmax(net(images, training=False), -1)

        self._gradients = gradients
        self._apply_weights = apply_weights
        self._apply_theta = apply_theta
        self._predict = predict

    # -- the search ------------------------------------------------------------
    def held_out_accuracy(self) -> float:
        """Supernet top-1 on the held-out split (``softmax(θ/τ)`` mixing)."""
        from mnas.train.data import scale_pixels

        images = scale_pixels(self.data.validation_images).numpy()
        labels = self.data.validation_labels
        hits = 0
        for begin in range(0, len(labels), 256):
            pred = self._predict(images[begin : begin + 256]).numpy()
            hits += int(np.sum(pred == labels[begin : begin + 256]))
        return hits / max(1, len(labels))

    def expected_ms(self) -> float:
        """Expected latency under ``softmax(θ)`` (no noise, τ = 1)."""
        return float(self.latency(self.net.arch_weights(temperature=1.0)))

    def _set_temperature(self, epoch: int, step: int, steps: int) -> float:
        tau = self.config.temperature(epoch + step / max(1, steps))
        self.net.temperature.assign(tau)
        return tau

    def run_epoch(self, epoch: int) -> dict[str, Any]:
        config = self.config
        tau = self._set_temperature(epoch, 0, 1)
        start = time.perf_counter()
        sums = np.zeros(4)
        steps = 0
        rng = np.random.default_rng([config.seed, epoch, 0])
        for images, labels in _batches(
            self.split.w_images,
            self.split.w_labels,
            config.batch_size,
            rng,
            config.steps_per_epoch,
        ):
            self._set_temperature(epoch, steps, self.weight_steps_per_epoch)
            metrics, w_grads, _ = self._gradients(images, labels)
            self._apply_weights(w_grads)
            sums += [float(m) for m in metrics]
            steps += 1
        theta_steps = 0
        t_sums = np.zeros(4)
        if epoch >= config.warmup_epochs:
            rng = np.random.default_rng([config.seed, epoch, 1])
            for images, labels in _batches(
                self.split.t_images,
                self.split.t_labels,
                config.batch_size,
                rng,
                config.steps_per_epoch,
            ):
                # θ steps see the temperature the epoch ended its weights at.
                metrics, _, t_grads = self._gradients(images, labels)
                self._apply_theta(t_grads)
                t_sums += [float(m) for m in metrics]
                theta_steps += 1
        from mnas.model.supernet import theta_entropy

        mean = sums / max(1, steps)
        probs = self.net.probabilities()
        tau_end = self._set_temperature(epoch + 1, 0, 1)
        record = {
            "epoch": epoch + 1,
            "temperature": tau,
            "temperature_end": tau_end,
            "loss": mean[0],
            "ce": mean[1],
            "sampled_ms": mean[2],
            "train_accuracy": mean[3],
            "theta_loss": (t_sums[0] / theta_steps) if theta_steps else None,
            "weight_steps": steps,
            "theta_steps": theta_steps,
            "expected_ms": self.expected_ms(),
            "val_accuracy": self.held_out_accuracy(),
            "theta_entropy": theta_entropy(self.net),
            "argmax": list(self.net.argmax_actions()),
            "argmax_probs": argmax_probabilities(probs),
            "probs": {k: [round(float(x), 5) for x in v] for k, v in probs.items()},
            "seconds": time.perf_counter() - start,
            "time": time.time(),
        }
        return record

    def search(self) -> None:
        config = self.config
        done = int(self.epoch.numpy())
        if done:
            print(f"resuming after epoch {done}/{config.epochs}", file=self.stream)
        started = time.perf_counter()
        for epoch in range(done, config.epochs):
            record = self.run_epoch(epoch)
            self.epoch.assign(epoch + 1)
            self.record.assign(json.dumps(record, sort_keys=True))
            self.manager.save(checkpoint_number=epoch + 1)
            self.journal.append(record)
            self.plot()
            elapsed = time.perf_counter() - started
            left = elapsed / (epoch + 1 - done) * (config.epochs - epoch - 1)
            print(self._progress_line(record, left), file=self.stream, flush=True)

    def _progress_line(self, record: Mapping[str, Any], left_s: float) -> str:
        from mnas.io.progress import format_duration

        phase = "" if record["theta_steps"] else " (warm-up)"
        return (
            f"epoch {record['epoch']}/{self.config.epochs}{phase} | loss "
            f"{record['loss']:.3f} CE {record['ce']:.3f} | E[lat] "
            f"{record['expected_ms']:.2f} ms | tau {record['temperature']:.2f} | "
            f"acc train {record['train_accuracy']:.3f} held-out "
            f"{record['val_accuracy']:.3f} | H(theta) {record['theta_entropy']:.3f} "
            f"({concentration(record['probs']).split(';')[0]}) | "
            f"{record['seconds']:.0f}s/epoch, remaining ~{format_duration(left_s)}"
        )

    def plot(self) -> None:
        from mnas.dnas.report import plot_theta

        plot_theta(self._path(THETA_PLOT), self.journal.records, self.net.decisions)

    # -- the derived architecture -----------------------------------------------
    def derive_and_evaluate(self) -> dict[str, Any]:
        """Trains, exports and times the argmax architecture; writes best.json."""
        import keras

        from mnas.model.builder import build_model
        from mnas.search.workers.candidate import export_trained
        from mnas.train.proxy import train_and_evaluate
        from mnas.train.proxy_config import TrainerConfig

        config = self.config
        actions = self.net.argmax_actions()
        spec = self.space.decode_for(config.sharing, actions)
        predicted = predicted_raw = predicted_calibrated = None
        if self.predictor is not None:
            predicted = float(self.predictor.predict(spec))
            raw = float(self.predictor.raw_ms(spec))
            predicted_raw = raw
            predicted_calibrated = float(self.predictor.table.calibration.apply(raw))
        keras.utils.set_random_seed(config.seed)
        model = build_model(spec, self.data.image_shape, self.data.num_classes)
        trainer = TrainerConfig(**{"seed": config.seed, **config.trainer})
        start = time.perf_counter()
        result = train_and_evaluate(model, self.data, trainer)
        train_s = time.perf_counter() - start
        path = self._path(MODELS_DIR, DERIVED_TFLITE)
        start = time.perf_counter()
        export_trained(spec, model, config.deployment_resolution, path)
        export_s = time.perf_counter() - start
        latency_ms, latency = None, None
        if config.measure:
            backend = self.backend
            if backend is None:
                from mnas.latency.backends.host import HostBackend

                backend = HostBackend()
            measured = backend.measure(path)
            latency_ms = float(measured.median_ms)
            latency = measured.to_dict() if hasattr(measured, "to_dict") else None
        final = self.journal.records[-1] if self.journal.records else {}
        entry = {
            "rank": 1,
            "trial_id": 0,
            "reward": None,
            "accuracy": float(result.accuracy),
            "latency_ms": latency_ms,
            "predicted_ms": predicted,
            "predicted_raw_ms": predicted_raw,
            "predicted_calibrated_ms": predicted_calibrated,
            "supernet_accuracy": final.get("val_accuracy"),
            "argmax_probabilities": argmax_probabilities(self.net.probabilities()),
            "block_strings": list(spec.block_strings),
            "actions": list(actions),
            "sharing": config.sharing,
            "arch": spec.to_dict(),
            "tflite": path,
            "latency": latency,
            "timings": {"train_s": train_s, "export_s": export_s},
        }
        self.outputs.write_best(
            {
                "search_space": self.space.identity(),
                "method": "dnas",
                "loss": config.loss,
                "pressure": config.pressure,
            },
            1,
            [entry],
        )
        return entry

    def run(self) -> dict[str, Any]:
        """Searches, then derives and evaluates; the work directory stays
        locked until both are done."""
        try:
            self.search()
            return self.derive_and_evaluate()
        finally:
            self.close()
