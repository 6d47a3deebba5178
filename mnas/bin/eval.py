"""mnas-eval: top-1 / top-5 of a checkpoint with the official preprocessing.

Examples::

  mnas-eval --checkpoint=/ckpt/mnasnet-a1 --eval_dataset=imagenet2012 \\
      --data_dir=/data/tfds --manual_dir=/data/imagenet
  mnas-eval --checkpoint=runs/train/final --eval_dataset=folder:/data/val_images
  mnas-eval --arch=best.json --checkpoint=runs/train/final --eval_dataset=... \\
      --output_dir=runs/eval

The checkpoint is an mnas weights folder or an official MnasNet checkpoint
(told apart automatically). --arch is optional: a native folder stores its
architecture, and an official checkpoint's model scope names its preset.
With --output_dir, writes config.json and results.json there.
"""

from __future__ import annotations

import os
import time

from absl import flags

from mnas.flags.arch import arch_from_flags, define_arch_flags
from mnas.flags.common import (
    FlagError,
    check_folder,
    define_output_dir_flag,
    quiet_tensorflow,
    run_binary,
)
from mnas.flags.eval import (
    RENAMED,
    check_eval_data_flags,
    define_eval_flags,
    eval_config_from_flags,
    load_checkpoint_from_flags,
)
from mnas.io import write_json_atomic

define_arch_flags()
define_eval_flags()
define_output_dir_flag()
FLAGS = flags.FLAGS


def _refuse_scaling_without_arch() -> None:
    """The architecture read from a checkpoint is used as stored, so a
    multiplier or resolution without --arch would be silently ignored."""
    given = [
        f"--{name}"
        for name, unset in (
            ("width_multiplier", 1.0),
            ("depth_multiplier", 1.0),
            ("resolution", None),
        )
        if getattr(FLAGS, name) != unset
    ]
    if given:
        raise FlagError(
            f"{', '.join(given)} needs --arch (the checkpoint's own architecture is "
            "used as stored); e.g. --arch=mnasnet-a1 --width_multiplier=0.75 for "
            "an official x0.75 checkpoint"
        )


def main(argv: list[str]) -> int:
    del argv  # run_binary refuses positional arguments
    if not FLAGS.checkpoint:
        raise FlagError("--checkpoint is required")
    check_eval_data_flags(FLAGS)
    check_folder(FLAGS.output_dir, "output_dir")
    spec = arch_from_flags(FLAGS, required=False)
    if spec is None:
        _refuse_scaling_without_arch()
    quiet_tensorflow(FLAGS)
    start = time.perf_counter()
    loaded = load_checkpoint_from_flags(FLAGS, spec)
    print(f"loaded {loaded.description} in {time.perf_counter() - start:.1f} s")
    size = loaded.spec.resolution
    config = eval_config_from_flags(FLAGS, size, loaded.preprocessing)
    print(
        f"preprocessing: centre crop {size}/({size}+{config.crop_padding}), "
        f"{config.resize_method} resize to {size}, {config.preprocessing} normalization"
    )
    from mnas.train import evaluate, keras_predictor

    result, source = evaluate(keras_predictor(loaded.model), config, _progress())
    print(
        f"{source.description}: top-1 {result.top1:.4f}, top-5 {result.top5:.4f} "
        f"over {result.num_examples} images ({result.seconds:.1f} s)"
    )
    if FLAGS.output_dir:
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
    return 0


def _progress():
    """Prints the running top-1 every --progress_every batches."""
    every = FLAGS.progress_every
    batches_seen = [0]

    def progress(done: int, total: int | None, top1: float) -> None:
        batches_seen[0] += 1
        if every and batches_seen[0] % every == 0:
            of = f"/{total}" if total else ""
            print(f"  {done}{of} images, top-1 so far {top1:.4f}", flush=True)

    return progress


def run() -> None:
    run_binary("mnas-eval", main, RENAMED)


if __name__ == "__main__":
    run()
