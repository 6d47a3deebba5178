"""mnas-eval: top-1 / top-5 of a checkpoint with the official preprocessing.

Examples::

  mnas-eval --checkpoint=/ckpt/mnasnet-a1 --dataset=imagenet2012 \\
      --data_dir=/data/tfds --manual_dir=/data/imagenet
  mnas-eval --checkpoint=runs/train/final --dataset=folder:/data/val_images
  mnas-eval --arch=best.json --checkpoint=runs/train/final --dataset=... \\
      --output_dir=runs/eval

The checkpoint is an mnas weights folder or an official MnasNet checkpoint
(told apart automatically). --arch is optional: a native folder stores its
architecture, and an official checkpoint's model scope names its preset.
With --output_dir, writes config.json and results.json there.
"""

from __future__ import annotations

import os
import sys
import time

from absl import app, flags

from mnas.flags.arch import define_arch_flags, load_arch
from mnas.flags.evaluation import (
    define_checkpoint_flags,
    define_eval_data_flags,
    define_tfds_flags,
    eval_config_from_flags,
    load_checkpoint_from_flags,
)
from mnas.flags.latency import quiet_tensorflow
from mnas.io.atomic import write_json_atomic
from mnas.search_space import SpecError

define_arch_flags(default_arch=None)
define_checkpoint_flags(" Required.")
define_eval_data_flags()
define_tfds_flags()
flags.DEFINE_string(
    "output_dir", None, "Optional folder for config.json, results.json."
)
flags.DEFINE_integer("progress_every", 10, "Print progress every N batches (0: never).")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.checkpoint:
        raise app.UsageError("--checkpoint is required")
    if not FLAGS.dataset:
        raise app.UsageError("--dataset is required (imagenet2012, folder:<path>...)")
    spec = _arch_or_none()
    quiet_tensorflow(FLAGS)

    from mnas.model.official.checkpoint import CheckpointError
    from mnas.model.weights import WeightsError
    from mnas.train.data import DataError
    from mnas.train.evaluation import evaluate, keras_predictor

    start = time.perf_counter()
    try:
        loaded = load_checkpoint_from_flags(FLAGS, spec)
    except (WeightsError, CheckpointError, SpecError) as error:
        raise app.UsageError(str(error)) from None
    print(f"loaded {loaded.description} in {time.perf_counter() - start:.1f} s")
    size = loaded.spec.resolution
    try:
        config = eval_config_from_flags(FLAGS, size, loaded.preprocessing)
    except DataError as error:
        raise app.UsageError(str(error)) from None
    print(
        f"preprocessing: centre crop {size}/({size}+{config.crop_padding}), "
        f"{config.resize_method} resize to {size}, {config.preprocessing} normalization"
    )
    every = FLAGS.progress_every
    batches_seen = [0]

    def progress(done: int, total: int | None, top1: float) -> None:
        batches_seen[0] += 1
        if every and batches_seen[0] % every == 0:
            of = f"/{total}" if total else ""
            print(f"  {done}{of} images, top-1 so far {top1:.4f}", flush=True)

    try:
        result, source = evaluate(keras_predictor(loaded.model), config, progress)
    except DataError as error:
        print(f"mnas-eval: {error}", file=sys.stderr)
        return 1
    print(
        f"{source.description}: top-1 {result.top1:.4f}, top-5 {result.top5:.4f} "
        f"over {result.num_examples} images ({result.seconds:.1f} s)"
    )
    if FLAGS.output_dir:
        _write_outputs(loaded, config, source, result)
    return 0


def _arch_or_none():
    if not FLAGS.arch:
        return None
    try:
        spec = load_arch(FLAGS.arch)
        if FLAGS.width_multiplier != 1.0 or FLAGS.depth_multiplier != 1.0:
            spec = spec.scaled(FLAGS.width_multiplier, FLAGS.depth_multiplier)
        if FLAGS.resolution is not None:
            spec = spec.replace(resolution=FLAGS.resolution)
    except SpecError as error:
        raise app.UsageError(str(error)) from None
    return spec


def _write_outputs(loaded, config, source, result) -> None:
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    write_json_atomic(
        os.path.join(FLAGS.output_dir, "config.json"),
        {
            "binary": "mnas-eval",
            "checkpoint": FLAGS.checkpoint,
            "loaded": loaded.description,
            "arch": loaded.spec.to_dict(),
            "eval": config.to_dict(),
        },
    )
    write_json_atomic(
        os.path.join(FLAGS.output_dir, "results.json"),
        {"source": source.description, **result.to_dict()},
    )


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
