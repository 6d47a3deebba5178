"""mnas-train: full training of an architecture with the official MnasNet recipe.

Examples::

  mnas-train --arch=best.json --work_dir=runs/full --dataset=imagenet2012 \\
      --data_dir=/data/tfds --manual_dir=/data/imagenet --strategy=mirrored
  mnas-train --arch=mnasnet-small --work_dir=/tmp/smoke --epochs=1 \\
      --batch_size=32 --resolution=32           # embedded digits, minutes

Defaults are the official config (RMSProp 0.9/0.9/1e-3, 0.016 per 256 images,
5 warm-up epochs, x0.97 every 2.4 epochs, weight decay 1e-5, label smoothing
0.1, EMA 0.9999, batch 1024, 350 epochs). Rerunning with the same --work_dir
resumes from the latest epoch checkpoint (--epochs may grow). The moving-
average weights end up in <work_dir>/final for mnas-eval and mnas-export.
"""

from __future__ import annotations

from absl import app, flags

from mnas.flags.arch import arch_from_flags, define_arch_flags
from mnas.flags.evaluation import define_tfds_flags
from mnas.flags.latency import quiet_tensorflow
from mnas.search_space import SpecError

define_arch_flags()
define_tfds_flags()
flags.DEFINE_string("work_dir", None, "Folder for checkpoints, config.json, final/.")
flags.DEFINE_string(
    "dataset", "digits", "digits (embedded), folder:<path> or a tfds name."
)
flags.DEFINE_integer("epochs", 350, "Training epochs.")
flags.DEFINE_integer("batch_size", 1024, "Global batch size.")
flags.DEFINE_float("base_learning_rate", 0.016, "Learning rate per 256 images.")
flags.DEFINE_float("warmup_epochs", 5.0, "Linear warm-up epochs.")
flags.DEFINE_float("lr_decay_rate", 0.97, "Staircase decay factor.")
flags.DEFINE_float("lr_decay_epochs", 2.4, "Epochs between decays.")
flags.DEFINE_float("weight_decay", 1e-5, "L2 weight decay (non-batch-norm weights).")
flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing.")
flags.DEFINE_float("moving_average_decay", 0.9999, "Weight EMA decay (0: off).")
flags.DEFINE_float("dropout_rate", None, "Overrides the architecture's dropout.")
flags.DEFINE_enum(
    "strategy", "default", ["default", "mirrored", "tpu"], "tf.distribute strategy."
)
flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu.")
flags.DEFINE_integer("num_train_examples", None, "Use only the first N examples.")
flags.DEFINE_integer(
    "max_steps_per_epoch", None, "Cap on steps per epoch (smoke tests)."
)
flags.DEFINE_integer("seed", 0, "Seed.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.work_dir:
        raise app.UsageError("--work_dir is required")
    try:
        spec = arch_from_flags(FLAGS)
    except SpecError as error:
        raise app.UsageError(str(error)) from None
    quiet_tensorflow(FLAGS)

    from mnas.train.full import FullTrainingConfig, train

    try:
        config = FullTrainingConfig(
            epochs=FLAGS.epochs,
            batch_size=FLAGS.batch_size,
            base_learning_rate=FLAGS.base_learning_rate,
            warmup_epochs=FLAGS.warmup_epochs,
            lr_decay_rate=FLAGS.lr_decay_rate,
            lr_decay_epochs=FLAGS.lr_decay_epochs,
            weight_decay=FLAGS.weight_decay,
            label_smoothing=FLAGS.label_smoothing,
            moving_average_decay=FLAGS.moving_average_decay,
            dropout_rate=FLAGS.dropout_rate,
            strategy=FLAGS.strategy,
            tpu=FLAGS.tpu,
            dataset=FLAGS.dataset,
            data_dir=FLAGS.data_dir,
            manual_dir=FLAGS.manual_dir,
            resolution=FLAGS.resolution,
            num_train_examples=FLAGS.num_train_examples,
            max_steps_per_epoch=FLAGS.max_steps_per_epoch,
            seed=FLAGS.seed,
        )
        result = train(
            spec, config, FLAGS.work_dir, lambda line: print(line, flush=True)
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    print(f"{result.steps} steps in all; weights: {result.weights_dir}")
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
