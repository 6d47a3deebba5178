"""Latency pressure steers the differentiable search.

Runs ``mnas-dnas`` once per pressure value (FBNet's β, ``--fbnet_beta``, by
default; λ, ``--proxyless_lambda``, with ``--loss=proxyless``), each in its own work directory, then prints one row
per run (pressure, predicted ms, measured ms, held-out accuracy of the derived
network) and the command that made the table. Runs are sequential: they
share this machine's cores with the latency measurement.

    .venv/bin/python benchmarks/dnas_pressure.py --out=runs/dnas-pressure \
        --pressures=0,1.5,6 --search_epochs=5 --search_warmup_epochs=1
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

from mnas.dnas.report import result_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/dnas-pressure")
    parser.add_argument("--loss", default="fbnet", choices=("fbnet", "proxyless"))
    parser.add_argument("--pressures", default="0,1.5,6")
    parser.add_argument("--search_epochs", type=int, default=5)
    parser.add_argument("--search_warmup_epochs", type=int, default=1)
    parser.add_argument("--lut", default="runs/lut/host.lut.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="interleaved timing rounds of the derived models after the runs",
    )
    parser.add_argument(
        "--extra", default="", help="more mnas-dnas flags, one quoted string"
    )
    args = parser.parse_args()
    # Work folders keep the short names of earlier runs (beta-6, lam-0.5).
    knob = "beta" if args.loss == "fbnet" else "lam"
    pressure_flag = "fbnet_beta" if args.loss == "fbnet" else "proxyless_lambda"
    exe = os.path.join(os.path.dirname(sys.executable), "mnas-dnas")
    rows = []
    for value in (float(v) for v in args.pressures.split(",")):
        work_dir = os.path.join(args.out, f"{knob}-{value:g}")
        best = os.path.join(work_dir, "best.json")
        if not os.path.exists(best):
            command = [
                exe,
                f"--work_dir={work_dir}",
                f"--loss={args.loss}",
                f"--{pressure_flag}={value:g}",
                f"--search_epochs={args.search_epochs}",
                f"--search_warmup_epochs={args.search_warmup_epochs}",
                f"--lut={args.lut}",
                f"--seed={args.seed}",
                *shlex.split(args.extra),
            ]
            if os.path.exists(os.path.join(work_dir, "config.json")):
                command.append("--resume")
            print("+", " ".join(command), flush=True)
            start = time.perf_counter()
            subprocess.run(command, check=True)
            print(f"  {time.perf_counter() - start:.0f} s", flush=True)
        with open(best, encoding="utf-8") as handle:
            entry = json.load(handle)["best"][0]
        rows.append({"loss": args.loss, "pressure": value, **entry})
    # Each run timed its model once, minutes apart under varying load; time
    # them again in interleaved rounds (model A, B, C, A, B, C...) and take
    # the median per model, as docs/latency.md advises on this shared host.
    from mnas.latency.backends.host import HostBackend

    backend = HostBackend()
    samples: list[list[float]] = [[] for _ in rows]
    for _ in range(args.rounds):
        for index, row in enumerate(rows):
            samples[index].append(backend.measure(row["tflite"]).median_ms)
    for row, values in zip(rows, samples):
        row["in_run_ms"] = row["latency_ms"]
        row["latency_ms"] = float(np.median(values))
        row["spread"] = f"{min(values):.2f}-{max(values):.2f}"
    print()
    print(result_table(rows))
    print(
        f"measured ms: median of {args.rounds} interleaved rounds (each a "
        "50-run median); in-run ms: the run's own single timing"
    )
    measured = [r["latency_ms"] for r in rows]
    falling = all(a > b for a, b in zip(measured, measured[1:]))
    print(f"\nmeasured latency falls monotonically with pressure: {falling}")
    print("command: " + " ".join(shlex.quote(a) for a in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
