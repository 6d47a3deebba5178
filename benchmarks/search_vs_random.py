"""Search vs random vs hand design, for one fixed wall-clock budget.

For each seed, ``mnas-search --evaluation=shared`` runs once with the LSTM
controller (REINFORCE) and once with random search, side by side (so both
see the same machine load), each for the same ``--budget_s`` of wall clock
and at most ``--num_trials`` architectures (the schedules span it). Each search ends by training its
top-k architectures standalone with the proxy trainer and timing them on the
host backend (its ``verify`` trials). The presets, scaled by width multiplier
to bracket the same latency range, are trained with the same proxy recipe
(``TrainerConfig`` defaults, the same ``evaluate_candidate``) and timed on the
same backend. Reported for every group: the best standalone accuracy at or
under ``--target_ms`` (measured), and the hypervolume of the (accuracy,
measured latency) Pareto front of its finalists, against the reference point
(accuracy 0, ``--reference_ms``). Also, per search, the mean shared-weight
reward of its first and last quarter of controller-phase samples.

Every finished unit (a search, a preset) is one line of ``results.jsonl`` in
``--out``; a rerun skips the units it finds there, so an interrupted run
resumes. ``--report`` only prints the table and draws the plot.

The searches' finalists are timed while the other search of their seed may
still run, the presets later and alone, so their latencies are not taken
under the same conditions. ``--retime_rounds N`` (default 5; 0 skips it)
therefore times every finalist's and preset's ``.tflite`` again, all in
the same interleaved rounds (``measure_interleaved``: round-robin, the
median of each file's round medians), once everything has run; the figures
go to ``retimed.json`` and the table and plot use them (the header says
which latencies it shows).

  nice -n 5 python benchmarks/search_vs_random.py --out runs/search_vs_random \\
      --seeds 0,1,2 --budget_s 240

``--search_space`` is passed to the searches (e.g. ``mnasnet-mbconv``, whose
architectures are slower: bracket them with ``--widths``, and give the
lookup table built for that space).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

PRESETS = ("mnasnet-a1", "mobilenet-v2")
WIDTHS = (0.5, 0.75, 1.0)
CONTROLLERS = ("reinforce", "random")


def _done(path: str) -> dict[str, dict]:
    units = {}
    if os.path.exists(path):
        with open(path) as handle:
            for line in handle:
                if line.strip():
                    entry = json.loads(line)
                    units[entry["unit"]] = entry
    return units


def _append(path: str, entry: dict) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def pareto_front(points):
    """(latency, accuracy) points not dominated (lower latency, higher
    accuracy), by latency."""
    front = []
    for latency, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or accuracy > front[-1][1]:
            front.append((latency, accuracy))
    return front


def hypervolume(points, reference_ms: float) -> float:
    """Area (ms x accuracy) dominated by ``points`` and bounded by the
    reference point (``reference_ms``, accuracy 0)."""
    area, previous = 0.0, 0.0
    for latency, accuracy in pareto_front(points):
        if latency >= reference_ms:
            break
        area += (reference_ms - latency) * (accuracy - previous)
        previous = accuracy
    return area


def _search_command(args, controller: str, seed: int) -> list[str]:
    work_dir = os.path.join(args.out, f"{controller}-seed{seed}")
    command = [
        sys.executable,
        "-m",
        "mnas.bin.search",
        "--evaluation=shared",
        f"--controller={controller}",
        f"--seed={seed}",
        f"--work_dir={work_dir}",
        f"--num_trials={args.num_trials}",
        f"--time_budget_s={args.budget_s}",
        f"--top_k={args.top_k}",
        f"--target_ms={args.target_ms}",
        f"--lut={args.lut}",
        f"--search_space={args.search_space}",
        "--outputs_interval_s=60",
    ]
    if os.path.exists(os.path.join(work_dir, "config.json")):
        command.append("--resume")
    return command


def run_searches(args, seed: int, controllers) -> list[dict]:
    """The searches of one seed, at the same time (the same machine load for
    the controller and for random search)."""
    started = time.time()
    running = []
    for controller in controllers:
        command = _search_command(args, controller, seed)
        log = open(  # noqa: SIM115 - closed when its search ends
            os.path.join(args.out, f"{controller}-seed{seed}.log"), "ab"
        )
        running.append(
            (
                controller,
                command,
                log,
                subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT),
            )
        )
    entries = []
    for controller, command, log, process in running:
        if process.wait() != 0:
            raise RuntimeError(f"{shlex.join(command)} failed; see {log.name}")
        log.close()
        entries.append(_summary(args, controller, seed, command, started))
    return entries


def _verified(work_dir: str) -> list:
    """The search's completed verify trials, in journal order."""
    from mnas.search.trial import Journal

    latest = Journal.open(os.path.join(work_dir, "trials.jsonl")).latest().values()
    return [r for r in latest if r.phase == "verify" and r.status == "COMPLETED"]


def _summary(args, controller, seed, command, started) -> dict:
    from mnas.search.trial import Journal

    work_dir = os.path.join(args.out, f"{controller}-seed{seed}")
    latest = Journal.open(os.path.join(work_dir, "trials.jsonl")).latest().values()
    shared = [r for r in latest if r.phase in ("warmup", "search")]
    controlled = [r.reward for r in shared if r.phase == "search" and r.reward]
    quarter = max(1, len(controlled) // 4)
    finalists = [
        {
            "accuracy": r.accuracy,
            "measured_ms": r.measured_ms,
            "shared_accuracy": r.shared_accuracy,
            "predicted_ms": r.predicted_ms,
            "blocks": list(r.block_strings),
            "tflite_path": r.tflite_path,
        }
        for r in _verified(work_dir)
    ]
    cpu = [r.timings.get("cpu_s") for r in shared if r.timings.get("cpu_s")]
    return {
        "unit": f"{controller}-seed{seed}",
        "group": controller,
        "seed": seed,
        "architectures": len(shared),
        "controller_samples": len(controlled),
        "wall_s": time.time() - started,
        "median_cpu_s_per_arch": statistics.median(cpu) if cpu else None,
        "early_reward": statistics.fmean(controlled[:quarter]) if controlled else None,
        "late_reward": statistics.fmean(controlled[-quarter:]) if controlled else None,
        "finalists": finalists,
        "command": shlex.join(command),
    }


def run_preset(args, name: str, width: float) -> dict:
    from mnas.latency.backend import make_backend
    from mnas.search.workers.candidate import evaluate_candidate
    from mnas.search_space import get_preset
    from mnas.train.data_config import DataConfig
    from mnas.train.proxy_config import TrainerConfig

    spec = get_preset(name, width_multiplier=width)
    path = os.path.join(args.out, "presets", f"{name}-{width:g}.tflite")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    import dataclasses

    result = evaluate_candidate(
        {
            "trial_id": 0,
            "arch": spec.to_dict(),
            "data": dataclasses.asdict(DataConfig()),
            "trainer": dataclasses.asdict(TrainerConfig()),
            "deployment_resolution": 224,
            "tflite_path": path,
            "seed": 0,
        }
    )
    measured = make_backend("host").measure(path)
    return {
        "unit": f"{name}-{width:g}",
        "group": "presets",
        "finalists": [
            {
                "accuracy": result["accuracy"],
                "measured_ms": float(measured.median_ms),
                "blocks": [name, f"width {width:g}"],
            }
        ],
    }


def finalist_files(args, units: dict[str, dict]) -> dict[tuple[str, int], str]:
    """(unit, finalist index) -> its ``.tflite``: a search's verify trials in
    journal order (the order of its finalists), a preset's exported file."""
    files = {}
    for unit, entry in units.items():
        if entry["group"] == "presets":
            files[(unit, 0)] = os.path.join(args.out, "presets", f"{unit}.tflite")
        else:
            for index, record in enumerate(_verified(os.path.join(args.out, unit))):
                files[(unit, index)] = record.tflite_path
    return files


def retime(args, units: dict[str, dict]) -> dict[str, list[float]]:
    """Every finalist and preset timed again in the same interleaved rounds:
    {unit: [ms per finalist]}."""
    from mnas.latency.backend import make_backend
    from mnas.latency.lut.calibration import measure_interleaved

    files = finalist_files(args, units)
    missing = [path for path in files.values() if not path or not os.path.exists(path)]
    if missing:
        raise FileNotFoundError(
            f"cannot retime, missing: {', '.join(map(str, missing))}"
        )
    keys = sorted(files)
    print(
        f"retiming {len(keys)} files in {args.retime_rounds} interleaved rounds",
        flush=True,
    )
    medians = measure_interleaved(
        [files[key] for key in keys], make_backend("host"), rounds=args.retime_rounds
    )
    retimed: dict[str, list[float]] = {}
    for (unit, _), ms in zip(keys, medians):  # sorted: each unit's in order
        retimed.setdefault(unit, []).append(ms)
    return retimed


def with_retimed(units: dict[str, dict], retimed: dict[str, list[float]]) -> dict:
    """``units`` with each finalist's ``measured_ms`` replaced by its retimed
    figure (the search's own kept as ``search_measured_ms``)."""
    result = {}
    for unit, entry in units.items():
        figures = retimed.get(unit)
        if figures is None or len(figures) != len(entry["finalists"]):
            raise ValueError(
                f"retimed.json does not cover {unit}; rerun with --retime_rounds"
            )
        finalists = [
            {**f, "search_measured_ms": f.get("measured_ms"), "measured_ms": ms}
            for f, ms in zip(entry["finalists"], figures)
        ]
        result[unit] = {**entry, "finalists": finalists}
    return result


def report(args, units: dict[str, dict], retimed: bool = False) -> None:
    groups: dict[str, list[dict]] = {}
    for entry in units.values():
        groups.setdefault(entry["group"], []).append(entry)
    print(
        f"\ntarget {args.target_ms:g} ms; hypervolume reference "
        f"({args.reference_ms:g} ms, accuracy 0), in ms x accuracy; latencies: "
        + (
            "all files retimed in the same interleaved rounds (retimed.json)\n"
            if retimed
            else "as each unit measured its own\n"
        )
    )
    print(
        "| run | archs sampled | early / late mean shared reward | finalists "
        "(standalone acc @ measured ms) | best acc <= target | hypervolume |"
    )
    print("|---|---|---|---|---|---|")
    for group in (*CONTROLLERS, "presets"):
        for entry in sorted(groups.get(group, []), key=lambda e: e["unit"]):
            _row(args, entry)
    if "presets" in groups:
        _row(
            args,
            {
                "unit": "presets (all widths)",
                "finalists": [f for e in groups["presets"] for f in e["finalists"]],
            },
        )
    wins = 0
    for seed in args.seeds:
        mine, theirs = (
            units.get(f"reinforce-seed{seed}"),
            units.get(f"random-seed{seed}"),
        )
        if mine and theirs:
            wins += _hv(args, mine) > _hv(args, theirs)
    print(
        f"\ncontroller beats random on hypervolume in {wins} of {len(args.seeds)} seeds"
    )
    _plot(args, groups)


def _points(entry):
    return [
        (f["measured_ms"], f["accuracy"])
        for f in entry["finalists"]
        if f.get("measured_ms") is not None
    ]


def _hv(args, entry) -> float:
    return hypervolume(_points(entry), args.reference_ms)


def _row(args, entry) -> None:
    points = _points(entry)
    under = [a for ms, a in points if ms <= args.target_ms]
    rewards = "-"
    if entry.get("early_reward") is not None:
        rewards = f"{entry['early_reward']:.3f} / {entry['late_reward']:.3f}"
    finalists = ", ".join(f"{a:.3f} @ {ms:.2f}" for ms, a in sorted(points))
    print(
        f"| {entry['unit']} | {entry.get('architectures', '-')} | {rewards} | "
        f"{finalists} | {f'{max(under):.3f}' if under else '-'} | "
        f"{_hv(args, entry):.3f} |"
    )


def _plot(args, groups) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    styles = {"reinforce": ("o", "C0"), "random": ("s", "C1"), "presets": ("^", "C2")}
    for group, entries in groups.items():
        marker, color = styles[group]
        points = [p for e in entries for p in _points(e)]
        if points:
            ms, acc = zip(*points)
            axes.scatter(ms, acc, marker=marker, color=color, label=group, alpha=0.8)
            front = pareto_front(points)
            axes.step(*zip(*front), where="post", color=color, alpha=0.5)
    axes.axvline(args.target_ms, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel("measured latency on the host backend (ms)")
    axes.set_ylabel("standalone proxy accuracy (held-out)")
    axes.set_title("finalists: LSTM controller vs random vs width-scaled presets")
    axes.legend()
    figure.tight_layout()
    path = os.path.join(args.out, "search_vs_random.png")
    figure.savefig(path, dpi=110)
    print(f"plot: {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/search_vs_random")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget_s", type=float, default=240.0)
    parser.add_argument("--num_trials", type=int, default=1000)
    parser.add_argument("--top_k", type=int, default=2)
    parser.add_argument("--target_ms", type=float, default=7.0)
    parser.add_argument("--reference_ms", type=float, default=14.0)
    parser.add_argument("--lut", default="~/.cache/mnas/lut/host-mnasnet.lut.jsonl")
    parser.add_argument("--search_space", default="mnasnet")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--widths", default=",".join(str(w) for w in WIDTHS))
    parser.add_argument("--report", action="store_true")
    parser.add_argument(
        "--retime_rounds",
        type=int,
        default=5,
        help="time every finalist and preset again in N interleaved rounds at "
        "the end (0: keep each unit's own measurement)",
    )
    parser.add_argument(
        "--only",
        choices=("searches", "presets"),
        default=None,
        help="run one part (two processes may share --out: each appends whole lines)",
    )
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    os.makedirs(args.out, exist_ok=True)
    results = os.path.join(args.out, "results.jsonl")
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    if not args.report and args.only != "presets":
        for seed in args.seeds:
            todo = [c for c in CONTROLLERS if f"{c}-seed{seed}" not in _done(results)]
            if todo:
                for entry in run_searches(args, seed, todo):
                    entry["load"] = os.getloadavg()
                    _append(results, entry)
                    print(json.dumps(entry)[:400], flush=True)
    if not args.report and args.only != "searches":
        for name in args.presets.split(","):
            for width in (float(w) for w in args.widths.split(",")):
                if f"{name}-{width:g}" not in _done(results):
                    entry = run_preset(args, name, width)
                    entry["load"] = os.getloadavg()
                    _append(results, entry)
                    print(json.dumps(entry)[:400], flush=True)
    units = _done(results)
    retimed_path = os.path.join(args.out, "retimed.json")
    try:
        if not args.report and args.retime_rounds > 0 and args.only is None:
            figures = retime(args, units)
            with open(retimed_path, "w") as handle:
                json.dump(
                    {
                        "rounds": args.retime_rounds,
                        "load": os.getloadavg(),
                        "ms": figures,
                    },
                    handle,
                    indent=1,
                )
        retimed = os.path.exists(retimed_path) and args.retime_rounds > 0
        if retimed:
            with open(retimed_path) as handle:
                units = with_retimed(units, json.load(handle)["ms"])
    except (OSError, ValueError, KeyError) as error:
        print(f"search_vs_random: {error}", file=sys.stderr)
        return 1
    report(args, units, retimed)
    print(f"load average now: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
