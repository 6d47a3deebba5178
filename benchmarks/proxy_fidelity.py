"""Proxy fidelity: does the proxy rank architectures the same way twice, and
the way a longer training does?

Trains the 4 presets (mnasnet-a1, mnasnet-b1, mnasnet-small, mobilenet-v2)
and ``--samples`` architectures drawn uniformly from the MnasNet space
(``space.decode(space.sample(i))`` for i = 0, 1, ...) with the default proxy
recipe under two seeds (model initialisation and training randomness; the
data split and batch order stay fixed, as within one search), and once with
``--long_factor`` times the epochs. Prints one row per architecture, then
Spearman's and Kendall's rank correlations between the two seeds and between
the proxy (seed A) and the long schedule, the accuracy spread, the seed noise,
the held-out set's resolution (one image), and the command that made it.

Every training appends one fsync'd JSON line to ``--out``; a rerun with the
same arguments skips what is there, so a killed run resumes. Runs go seed A
for all, then seed B, then long, so a cut-short run still has the seed pair.
``--jobs=N`` trains in N child processes (each takes every N-th training of
that order, ``--shard=i/N``), appending to the same file; ``--runs`` trains
only the named runs; ``--report_only`` prints the table of what is there.

    nice -n 5 .venv/bin/python benchmarks/proxy_fidelity.py --jobs=2 \
        --out=runs/proxy_fidelity.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np
from scipy import stats

PRESETS = ("mnasnet-a1", "mnasnet-b1", "mnasnet-small", "mobilenet-v2")


def architectures(num_samples: int) -> list[tuple[str, object]]:
    """(name, ArchSpec) for the presets and the first ``num_samples`` samples."""
    from mnas.search_space import MNASNET_SPACE, get_preset

    archs = [(name, get_preset(name)) for name in PRESETS]
    for index in range(num_samples):
        spec = MNASNET_SPACE.decode(MNASNET_SPACE.sample(index))
        archs.append((f"sample{index}", spec))
    return archs


def rank_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Spearman's rho, Kendall's tau-b) of two score vectors."""
    return (
        float(stats.spearmanr(a, b).statistic),
        float(stats.kendalltau(a, b).statistic),
    )


def _done(path: str) -> dict[tuple[str, str], dict]:
    found = {}
    if os.path.exists(path):
        with open(path) as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    found[(record["arch"], record["run"])] = record
    return found


def _append(path: str, record: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def train_one(spec, data, trainer, seed: int) -> dict:
    """Builds and proxy-trains ``spec`` exactly as a search candidate is."""
    import keras

    from mnas.model.builder import build_model
    from mnas.train.proxy import TrainingDivergedError, train_and_evaluate

    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    model = build_model(spec, data.image_shape, data.num_classes)
    try:
        result = train_and_evaluate(model, data, trainer)
        accuracy, error = float(result.accuracy), None
    except TrainingDivergedError as failure:
        accuracy, error = float("nan"), str(failure)
    finally:
        keras.backend.clear_session()
    return {
        "accuracy": accuracy,
        "error": error,
        "seconds": time.perf_counter() - start,
        "load1": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/proxy_fidelity.jsonl")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seeds", default="0,1", help="the two proxy seeds")
    parser.add_argument("--long_factor", type=int, default=4)
    parser.add_argument(
        "--epochs", type=int, default=None, help="proxy epochs (trainer default)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="child processes")
    parser.add_argument("--shard", default="0/1", help="i/N: train every N-th")
    parser.add_argument(
        "--runs", default=None, help="train only these runs (e.g. seed1,long)"
    )
    parser.add_argument("--report_only", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.jobs > 1 and not args.report_only:
        children = [
            subprocess.Popen(
                [sys.executable, *sys.argv, "--jobs=1", f"--shard={i}/{args.jobs}"]
            )
            for i in range(args.jobs)
        ]
        failed = [child.args for child in children if child.wait() != 0]
        if failed:
            print(f"children failed: {failed}", file=sys.stderr)
        args.report_only = True
    shard, num_shards = (int(part) for part in args.shard.split("/"))

    import tensorflow as tf

    if num_shards > 1:  # One core per child: N children share N cores.
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig
    from mnas.train.proxy_config import TrainerConfig

    seed_a, seed_b = (int(s) for s in args.seeds.split(","))
    base = TrainerConfig()
    if args.epochs is not None:
        base = dataclasses.replace(base, epochs=args.epochs)
    runs = {
        f"seed{seed_a}": dataclasses.replace(base, seed=seed_a),
        f"seed{seed_b}": dataclasses.replace(base, seed=seed_b),
        "long": dataclasses.replace(
            base, seed=seed_a, epochs=base.epochs * args.long_factor
        ),
    }
    data = load_proxy_data(DataConfig(dataset=args.dataset))
    archs = architectures(args.samples)
    done = _done(args.out)
    header = {"dataset": args.dataset, "validation": data.num_validation}
    chosen = args.runs.split(",") if args.runs else list(runs)
    tasks = [(run, name, spec) for run in chosen for name, spec in archs]
    for index, (run, name, spec) in enumerate(tasks):
        trainer = runs[run]
        if args.report_only or index % num_shards != shard:
            continue
        if (name, run) not in done:
            record = {"arch": name, "run": run, **header}
            record.update(train_one(spec, data, trainer, trainer.seed))
            record["epochs"] = trainer.epochs
            _append(args.out, record)
            done[(name, run)] = record
            print(
                f"{name:14s} {run:6s} acc {record['accuracy']:.4f} "
                f"{record['seconds']:6.1f} s load {record['load1']:.1f}",
                flush=True,
            )
    if num_shards > 1:
        return 0
    report(_done(args.out), archs, list(runs), data.num_validation)
    print(f"\nwall time this invocation: {time.perf_counter() - start:.0f} s")
    print("command: " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    return 0


def report(
    done: dict[tuple[str, str], dict],
    archs: list[tuple[str, object]],
    runs: list[str],
    num_validation: int,
) -> None:
    from mnas.io.tables import format_table
    from mnas.model.cost import compute_stats

    run_a, run_b, long = runs
    rows, scores = [], {run: [] for run in runs}
    for name, spec in archs:
        accs = [done.get((name, run), {}).get("accuracy", float("nan")) for run in runs]
        secs = done.get((name, run_a), {}).get("seconds", float("nan"))
        model_stats = compute_stats(spec, num_classes=10)
        rows.append(
            [
                name,
                round(model_stats.params / 1e6, 2),
                *accs,
                abs(accs[0] - accs[1]),
                round(secs, 1),
            ]
        )
        for run, acc in zip(runs, accs):
            scores[run].append(acc)
    print(
        format_table(
            ["arch", "params M", run_a, run_b, f"{long} ", "|A-B|", "A s"], rows
        )
    )
    a, b, c = (np.array(scores[run]) for run in runs)
    resolution = 1.0 / num_validation
    print(f"\nheld-out images: {num_validation} (one image = {resolution:.4f})")
    pairs = [(run_a, run_b, a, b), (run_a, long, a, c)]
    for first, second, x, y in pairs:
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 3:
            print(f"{first} vs {second}: fewer than 3 finished pairs")
            continue
        rho, tau = rank_agreement(x[ok], y[ok])
        print(
            f"{first} vs {second}: Spearman {rho:.3f}  Kendall {tau:.3f}  "
            f"(n={int(ok.sum())})"
        )
    is_preset = np.array([name in PRESETS for name, _ in archs])
    for run, x in zip(runs, (a, b, c)):
        ok = np.isfinite(x)
        if not ok.any():
            continue
        done_x = x[ok]
        presets, sampled = x[ok & is_preset], x[ok & ~is_preset]
        print(
            f"{run}: accuracy min {done_x.min():.4f}  median "
            f"{np.median(done_x):.4f}  max {done_x.max():.4f}  spread "
            f"{done_x.max() - done_x.min():.4f}  std {done_x.std():.4f}; "
            f">= 0.95: presets {int(np.sum(presets >= 0.95))}/{len(presets)}, "
            f"sampled {int(np.sum(sampled >= 0.95))}/{len(sampled)}"
        )
    noise = np.abs(a - b)
    noise = noise[np.isfinite(noise)]
    if len(noise):
        print(
            f"seed noise |{run_a}-{run_b}|: mean {noise.mean():.4f}  "
            f"max {noise.max():.4f}  ({noise.mean() / resolution:.1f} images)"
        )


if __name__ == "__main__":
    sys.exit(main())
