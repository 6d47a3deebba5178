"""Times mnas-dnas's derived models again, interleaved, beside the table's prediction.

  python benchmarks/retime_dnas.py runs/lut/host.lut.jsonl \\
      runs/dnas-pressure/beta-0 runs/dnas-pressure/beta-1.5 runs/dnas-pressure/beta-6

Each work directory's ``models/derived.tflite`` is timed in ``--rounds``
interleaved rounds on the host (median of round medians) and its
architecture (``best.json``) predicted from the table, with the classifier
width the exported file has.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence

import numpy as np


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lut")
    parser.add_argument("work_dirs", nargs="+")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--num_classes", type=int, default=10)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from mnas.io.tables import format_table
    from mnas.latency.backends.host import HostBackend
    from mnas.latency.lut.calibration import measure_interleaved
    from mnas.latency.lut.predictor import LatencyPredictor, describe_calibration
    from mnas.latency.lut.table import LookupTable
    from mnas.search_space import ArchSpec

    backend = HostBackend()
    table = LookupTable.load(args.lut)
    predictor = LatencyPredictor(table, backend)
    specs, paths = [], []
    for work_dir in args.work_dirs:
        with open(os.path.join(work_dir, "best.json"), encoding="utf-8") as handle:
            best = json.load(handle)["best"][0]
        specs.append(ArchSpec.from_dict(best["arch"]))
        paths.append(os.path.join(work_dir, "models", "derived.tflite"))
    rounds: list[list[float]] = []
    measured = measure_interleaved(paths, backend, args.rounds, None, rounds)
    spread = np.array(rounds).T
    rows = []
    for work_dir, spec, ms, each in zip(args.work_dirs, specs, measured, spread):
        raw = predictor.raw_ms(spec, num_classes=args.num_classes)
        predicted = predictor.predict(spec, num_classes=args.num_classes)
        rows.append(
            (
                work_dir,
                f"{raw:.2f}",
                f"{predicted:.2f}",
                f"{ms:.2f}",
                f"{each.min():.2f}-{each.max():.2f}",
                f"{predicted / ms:.3f}",
            )
        )
    headers = (
        "run",
        "raw sum ms",
        "predicted ms",
        "measured ms",
        "spread",
        "pred/meas",
    )
    print(format_table(headers, rows))
    print(
        f"\ncalibration: {describe_calibration(table.calibration)}; {args.rounds} "
        f"interleaved rounds; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        "command: python "
        + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
