"""mnas-describe: per-layer parameters and multiply-adds of an architecture."""

from absl import app, flags

from mnas.flags.arch import arch_from_flags, define_arch_flags
from mnas.model.describe import describe
from mnas.search_space import SpecError

define_arch_flags()
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        spec = arch_from_flags(FLAGS)
    except SpecError as error:
        raise app.UsageError(str(error)) from None
    print(describe(spec, FLAGS.num_classes))
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()
