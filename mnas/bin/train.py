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

from absl import flags

from mnas.flags.arch import arch_from_flags
from mnas.flags.common import quiet_tensorflow, run_binary
from mnas.flags.train import define_train_flags, full_training_config_from_flags

define_train_flags()
FLAGS = flags.FLAGS
DEFAULT_ARCH = "mnasnet-a1"


def main(argv: list[str]) -> int:
    del argv  # run_binary refuses positional arguments
    spec = arch_from_flags(FLAGS, default=DEFAULT_ARCH)
    quiet_tensorflow(FLAGS)
    config = full_training_config_from_flags(FLAGS)
    from mnas.train import train

    result = train(spec, config, FLAGS.work_dir, lambda line: print(line, flush=True))
    print(f"{result.steps} steps in all; weights: {result.weights_dir}")
    return 0


def run() -> None:
    run_binary("mnas-train", main)


if __name__ == "__main__":
    run()
