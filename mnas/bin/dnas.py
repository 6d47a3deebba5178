"""mnas-dnas: differentiable platform-aware search (FBNet) over the MnasNet space.

With no flags it searches the embedded default (scikit-learn's digits at 32 px)
with the host lookup table that `mnas-latency --build_lut` writes by default,
then trains, exports and times the derived architecture (LiteRT, XNNPACK,
1 thread, 224x224).
"""

import os
import sys
import time

from absl import app, flags, logging

from mnas.flags.dnas import define_dnas_flags, dnas_config_from_flags

define_dnas_flags()
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    from mnas.dnas.loop import DnasConfigError, DnasSearch
    from mnas.dnas.report import result_table
    from mnas.search_space import ActionError
    from mnas.train.data import DataError

    start = time.perf_counter()
    try:
        config = dnas_config_from_flags(FLAGS)
        if not config.lut_path or not os.path.exists(config.lut_path):
            raise DnasConfigError(
                f"lookup table {config.lut_path!r} does not exist; build it with "
                f"`mnas-latency --build_lut --lut={config.lut_path or 'PATH'}`"
            )
        print(
            f"mnas-dnas: {config.loss} loss (pressure {config.pressure:g}), "
            f"{config.sharing} sharing, {config.epochs} epochs "
            f"({config.warmup_epochs} warm-up), dataset {config.data['dataset']} at "
            f"{config.data['resolution']}px, table {config.lut_path}, work dir "
            f"{config.work_dir}",
            flush=True,
        )
        search = DnasSearch(config, resume=FLAGS.resume)
    except (ValueError, DataError, DnasConfigError, ActionError) as error:
        raise app.UsageError(str(error)) from None
    entry = search.run()
    print()
    print(result_table([{"loss": config.loss, "pressure": config.pressure, **entry}]))
    print(
        f"\nresults in {config.work_dir}: best.json, theta.png, epochs.jsonl, "
        f"models/derived.tflite ({time.perf_counter() - start:.0f} s)"
    )
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    sys.exit(run())
