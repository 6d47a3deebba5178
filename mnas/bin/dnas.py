"""mnas-dnas: differentiable platform-aware search (FBNet) over the MnasNet space.

With no flags it searches the embedded default (scikit-learn's digits at 32 px)
with the host lookup table that `mnas-latency --build_lut` writes by default,
then trains, exports and times the derived architecture (LiteRT, XNNPACK,
1 thread, 224x224).

Examples::

  mnas-dnas --work_dir=runs/dnas                # FBNet loss, fbnet_beta=0.6

It prints, per decision, the argmax choice and its final probability under
softmax(theta), and how many decisions reached P(argmax) >= 0.8.
  mnas-dnas --fbnet_beta=6 --search_epochs=10 --proxy_epochs=8
  mnas-dnas --loss=proxyless --proxyless_lambda=0.5 --proxyless_target_ms=7

The lookup table, the dataset and the work directory's config.json are read
before the work directory is claimed, so a fixed command line is never refused
by a failed first try.
"""

import sys
import time

from absl import flags, logging

from mnas.flags.common import check_work_dir, run_binary
from mnas.flags.dnas import RENAMED, define_dnas_flags, dnas_config_from_flags
from mnas.latency import open_lookup_table

define_dnas_flags()
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    del argv  # run_binary refuses positional arguments
    logging.set_verbosity(logging.WARNING)
    start = time.perf_counter()
    config = dnas_config_from_flags(FLAGS)
    check_work_dir(config.work_dir)
    open_lookup_table(config.lut_path)
    from mnas.dnas import DnasSearch, concentration, decision_table, result_table
    from mnas.train import DataConfig, load_proxy_data

    data = load_proxy_data(DataConfig(**config.data))
    print(
        f"mnas-dnas: {config.loss} loss (pressure {config.pressure:g}), "
        f"{config.sharing} sharing, {config.epochs} search epochs "
        f"({config.warmup_epochs} warm-up), dataset {config.data['dataset']} at "
        f"{config.data['resolution']}px, table {config.lut_path}, work dir "
        f"{config.work_dir}",
        flush=True,
    )
    search = DnasSearch(config, resume=FLAGS.resume, data=data)
    entry = search.run()
    probs = search.net.probabilities()
    print()
    print(decision_table(search.net.decisions, probs))
    print(f"\nfinal softmax(theta): {concentration(probs)}\n")
    print(result_table([{"loss": config.loss, "pressure": config.pressure, **entry}]))
    print(
        f"\nresults in {config.work_dir}: best.json, theta.png, epochs.jsonl, "
        f"models/derived.tflite ({time.perf_counter() - start:.0f} s)"
    )
    return 0


def run() -> None:
    run_binary("mnas-dnas", main, RENAMED)


if __name__ == "__main__":
    sys.exit(run())
