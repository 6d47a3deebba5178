"""Throughput of weight-sharing evaluation (``mnas-search --evaluation=shared``).

Runs the shared phase of a search over the MnasNet space on the embedded
digits (the default proxy data) for ``--num_trials`` architectures, in this
process, and reports:

* one-off costs: building the supernet, and the first trials (each candidate
  op is traced on first use; the ops warm-up calls them all early);
* the steady state: seconds per architecture over the second half of the
  trials, wall clock and this process's CPU time (on a shared machine the wall
  clock also counts other processes' turns);
* the per-step breakdown (medians of the journal's per-trial timings):
  ``sample`` (the controller's proposal, a batch at a time, with its
  checkpoint; or the uniform draw of the RL delay), ``latency`` (lookup-table
  prediction, plus measuring entries the table lacks), ``batch`` (training batch
  and path), ``train`` (forward and backward of the path), ``apply`` (the lazy
  Adam step), ``eval`` (the held-out batch), ``record`` (journal append,
  feedback, a controller update and checkpoint every batch of rewards).

The standalone verification of the top-k at the end is replaced by a stand-in
(it is a proxy training per architecture, timed in docs/search.md with the
real command), so the numbers are the shared phase's.

  python benchmarks/shared_throughput.py --num_trials=300
  python benchmarks/shared_throughput.py --num_trials=300 --synthetic_lut

Without ``--synthetic_lut`` the host table (``--lut``) is used, started empty
and filled as paths need entries when it does not exist.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time

STEPS = ("sample_s", "latency_s", "batch_s", "train_s", "apply_s", "eval_s", "record_s")


class _Clock:
    """Wall and CPU time at the end of every trial (a search callback)."""

    def __init__(self) -> None:
        from mnas.search.callbacks import Callback

        clock = self

        class Recorder(Callback):
            def on_search_begin(self, finished: int) -> None:
                clock.marks.append((time.perf_counter(), time.process_time()))

            def on_trial_end(self, record, ranked) -> None:
                clock.marks.append((time.perf_counter(), time.process_time()))

        self.marks: list[tuple[float, float]] = []
        self.callback = Recorder()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num_trials", type=int, default=300)
    parser.add_argument("--work_dir", default=None)
    parser.add_argument("--controller", default="reinforce")
    parser.add_argument("--controller_batch_size", type=int, default=4)
    parser.add_argument("--lut", default="~/.cache/mnas/lut/host-mnasnet.lut.jsonl")
    parser.add_argument("--synthetic_lut", action="store_true")
    parser.add_argument("--ops_warmup", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from mnas.controller import ControllerConfig
    from mnas.latency import LatencyConfig
    from mnas.search.config import SearchConfig
    from mnas.search.reward import RewardConfig
    from mnas.search.runner import Search
    from mnas.search.shared.config import SharedConfig
    from mnas.search.shared.latency import open_shared_predictor
    from mnas.search.workers.pool import InlinePool
    from mnas.search_space import get_search_space
    from mnas.testing.shared import FileSizeBackend, fake_standalone
    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig

    space = get_search_space("mnasnet")
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="shared_throughput_")
    lut_path = os.path.expanduser(args.lut)
    latency = LatencyConfig()
    fill = None
    if args.synthetic_lut:
        from mnas.latency.lut.predictor import LatencyPredictor
        from mnas.testing.latency_models import synthetic_table

        predictor = LatencyPredictor(synthetic_table(space, num_classes=10))
        lut_path = "synthetic"
    else:
        predictor, fill = open_shared_predictor(latency, lut_path, space)
    shared = SharedConfig()
    if args.ops_warmup is not None:
        shared = SharedConfig(ops_warmup=args.ops_warmup)
    config = SearchConfig(
        work_dir=work_dir,
        num_trials=args.num_trials,
        controller_kind=args.controller,
        controller=ControllerConfig(
            batch_size=args.controller_batch_size, seed=args.seed
        ),
        reward=RewardConfig("absolute", target_ms=7.0),
        latency=latency,
        latency_mode="verified",
        lut_path=lut_path,
        top_k=1,
        evaluation="shared",
        shared=shared,
        seed=args.seed,
    )
    data = load_proxy_data(DataConfig())
    clock = _Clock()
    started = time.perf_counter()
    search = Search(
        config,
        InlinePool(fake_standalone),
        FileSizeBackend(),
        predictor=predictor,
        callbacks=[clock.callback],
        data=data,
        lut_fill=fill,
    )
    search.run()
    total = time.perf_counter() - started
    report(search, clock, total, fill, predictor, args)
    print("\ncommand: " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    return 0


def report(search, clock: _Clock, total: float, fill, predictor, args) -> None:
    records = [
        r
        for r in search.journal.latest().values()
        if r.phase in ("warmup", "search") and r.status == "COMPLETED"
    ]
    marks = clock.marks
    first_wall = marks[1][0] - marks[0][0] if len(marks) > 1 else float("nan")
    half = len(marks) // 2
    steady = marks[half:]
    count = len(steady) - 1
    wall = (steady[-1][0] - steady[0][0]) / max(1, count)
    cpu = (steady[-1][1] - steady[0][1]) / max(1, count)
    shared_wall = marks[-1][0] - marks[0][0]
    print(
        f"architectures: {len(records)} in {shared_wall:.0f} s of shared phase "
        f"({len(records) / shared_wall:.2f} arch/s overall); whole run {total:.0f} s"
    )
    print(f"first trial (supernet build is before it): {first_wall:.1f} s")
    print(
        f"steady state (trials {half}..{len(marks) - 1}): {wall:.3f} s/arch wall, "
        f"{cpu:.3f} s/arch CPU of this process"
    )
    tail = records[len(records) // 2 :]
    print("\nper-step medians over the steady state (s):")
    for key in STEPS:
        values = [r.timings.get(key, 0.0) for r in tail]
        print(
            f"  {key[:-2]:8s} {statistics.median(values):.4f}  "
            f"(mean {statistics.fmean(values):.4f})"
        )
    total_step = [sum(r.timings.get(k, 0.0) for k in STEPS) for r in tail]
    print(
        f"  {'sum':8s} {statistics.median(total_step):.4f}  "
        f"(mean {statistics.fmean(total_step):.4f})"
    )
    if fill is not None:
        print(
            f"\nlookup table {fill.path}: {fill.initial_entries} entries at the "
            f"start, {len(predictor.table)} at the end"
        )
    load = os.getloadavg()
    print(
        f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    sys.exit(main())
