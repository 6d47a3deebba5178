"""Does the LSTM controller learn to hit a latency target? (vs random search)

With the lookup-table predictor scoring latency in well under a millisecond,
the controller can be run for thousands of samples against a pure latency
objective: the TuNAS absolute reward ACC + beta * |LAT/T - 1| with the
accuracy held constant, so the only thing to learn is the target. The table
reports, per controller and seed, the share of the last quarter of samples
whose predicted latency lies within ±5% of T.

  python benchmarks/controller_vs_random.py --lut runs/lut/host.lut.jsonl

The default target is the 20th percentile of the predicted latency of
uniformly random architectures (printed), a point random search rarely hits.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from collections.abc import Sequence

import numpy as np


def run_controller(
    kind: str,
    seed: int,
    samples: int,
    predictor,
    space,
    target_ms: float,
    batch_size: int,
    accuracy: float = 0.5,
    beta: float = -0.5,
) -> list[float]:
    """Predicted latencies of every sample, in proposal order."""
    from mnas.controller import ControllerConfig, make_controller
    from mnas.search.reward import RewardConfig, compute_reward

    controller = make_controller(
        kind, space.decisions(), ControllerConfig(batch_size=batch_size, seed=seed)
    )
    reward_config = RewardConfig("absolute", target_ms=target_ms, beta=beta)
    latencies: list[float] = []
    while len(latencies) < samples:
        for proposal in controller.propose_batch(batch_size):
            latency = predictor.predict(space.decode(proposal.actions))
            latencies.append(latency)
            controller.feedback(
                proposal.proposal_id, compute_reward(accuracy, latency, reward_config)
            )
    return latencies[:samples]


def share_within(latencies: Sequence[float], target_ms: float, band: float) -> float:
    values = np.asarray(latencies)
    return float(np.mean(np.abs(values / target_ms - 1.0) <= band))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lut", required=True, help="lookup table (mnas-latency --build_lut)"
    )
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--target_ms", type=float, default=None)
    parser.add_argument("--target_percentile", type=float, default=20.0)
    parser.add_argument("--band", type=float, default=0.05)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--beta", type=float, default=-0.5)
    parser.add_argument(
        "--controllers", default="reinforce,random", help="comma-separated kinds"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from mnas.io.tables import format_table
    from mnas.latency.lut.predictor import LatencyPredictor
    from mnas.latency.lut.table import LookupTable
    from mnas.search_space import MNASNET_SPACE

    space = MNASNET_SPACE
    table = LookupTable.load(args.lut)
    table.check_compatible(space_identity=space.identity())
    predictor = LatencyPredictor(table)
    rng = np.random.default_rng(12345)
    reference = [
        predictor.predict(space.decode(space.sample(rng))) for _ in range(2000)
    ]
    target = args.target_ms or float(np.percentile(reference, args.target_percentile))
    print(
        f"random architectures: predicted latency median {np.median(reference):.2f} ms, "
        f"p5 {np.percentile(reference, 5):.2f}, p95 {np.percentile(reference, 95):.2f}; "
        f"target T = {target:.2f} ms"
    )
    quarter = args.samples - args.samples // 4
    rows, shares = [], {}
    for kind in args.controllers.split(","):
        for seed in range(args.seeds):
            start = time.monotonic()
            latencies = run_controller(
                kind,
                seed,
                args.samples,
                predictor,
                space,
                target,
                args.batch_size,
                beta=args.beta,
            )
            last = latencies[quarter:]
            share = share_within(last, target, args.band)
            shares.setdefault(kind, []).append(share)
            rows.append(
                (
                    kind,
                    seed,
                    f"{100 * share_within(latencies[: args.samples // 4], target, args.band):.1f}%",
                    f"{100 * share:.1f}%",
                    f"{np.median(last):.2f}",
                    f"{time.monotonic() - start:.0f}",
                )
            )
            print(f"  {kind} seed {seed}: last-quarter share {share:.3f}", flush=True)
    for kind, values in shares.items():
        rows.append(
            (kind, "mean", "", f"{100 * statistics.fmean(values):.1f}%", "", "")
        )
    print()
    print(
        format_table(
            (
                "controller",
                "seed",
                f"first quarter within ±{100 * args.band:g}%",
                f"last quarter within ±{100 * args.band:g}%",
                "last-quarter median ms",
                "seconds",
            ),
            rows,
        )
    )
    print(
        f"\n{args.samples} samples per run, batch {args.batch_size}, TuNAS absolute "
        f"reward (beta {args.beta}) with accuracy held at 0.5, T = {target:.2f} ms; "
        f"table {args.lut} ({len(table)} entries)"
    )
    print(
        "command: python "
        + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
