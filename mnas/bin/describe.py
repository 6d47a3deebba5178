"""mnas-describe: per-layer parameters and multiply-adds of an architecture.

Example::

  mnas-describe --arch=mnasnet-a1 --width_multiplier=1.4
"""

from absl import flags

from mnas.flags.arch import arch_from_flags, define_arch_flags
from mnas.flags.common import run_binary
from mnas.model import describe

define_arch_flags()
FLAGS = flags.FLAGS
DEFAULT_ARCH = "mnasnet-a1"


def main(argv: list[str]) -> int:
    del argv  # run_binary refuses positional arguments
    spec = arch_from_flags(FLAGS, default=DEFAULT_ARCH)
    print(describe(spec, FLAGS.num_classes))
    return 0


def run() -> None:
    run_binary("mnas-describe", main)


if __name__ == "__main__":
    run()
