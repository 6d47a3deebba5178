"""Host latency of the paper's reference models beside its Pixel 1 figures.

Converts every model first (float32, batch 1, batch norm folded), then
times them INTERLEAVED: in each round every model is timed once (``--runs``
timed runs after a warm-up, pinned to one core), with the order rotated
from round to round.  Drift on a shared machine then hits every model
alike, and the per-round ratios to MobileNetV2 cancel most of it.  The
table gives the median of the round medians, their spread across rounds
and the median of the per-round ratios; "fastest" columns do the same with
each round's fastest run, which other processes on the core can only make
slower, so it is the steadier figure on a loaded machine.

  python benchmarks/latency_paper_table.py --rounds 5 --runs 30 --cpus 1

Paper figures: Tan et al., MnasNet (CVPR 2019), Table 1, Pixel 1 CPU,
single thread, batch 1 (see REFERENCE.md section 2).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

# Pixel 1 latency in ms from the MnasNet paper; None: not published.
PAPER_PIXEL1_MS: dict[str, float | None] = {
    "MobileNetV1": 113.0,
    "MobileNetV2 1.0": 75.0,
    "MobileNetV2 1.4": 143.0,
    "NASNet-A mobile": 183.0,
    "MnasNet-A1": 78.0,
    "MnasNet-B1": None,
    "MnasNet-small": None,
}
REFERENCE_MODEL = "MobileNetV2 1.0"
T = TypeVar("T")


@dataclass(frozen=True)
class ModelTiming:
    """Round medians (ms) of one model, plus what describes the file."""

    name: str
    round_medians: tuple[float, ...]
    round_mins: tuple[float, ...] = ()
    params: int | None = None
    size_bytes: int | None = None
    convert_s: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.round_medians)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.round_medians), max(self.round_medians)

    @property
    def fastest(self) -> float | None:
        """Median over rounds of each round's fastest run: less sensitive to
        other processes taking the core, which only ever add time."""
        return statistics.median(self.round_mins) if self.round_mins else None

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.round_medians, [25, 75])
        return float(q3 - q1)


def build_keras_model(name: str):
    """The named reference model at 224x224, random weights, 1000 classes."""
    import keras

    from mnas.model.builder import build_model
    from mnas.search_space import get_preset

    apps = keras.applications
    shape = (224, 224, 3)
    builders: dict[str, Callable[[], keras.Model]] = {
        "MobileNetV1": lambda: apps.MobileNet(input_shape=shape, weights=None),
        "MobileNetV2 1.0": lambda: apps.MobileNetV2(
            input_shape=shape, alpha=1.0, weights=None
        ),
        "MobileNetV2 1.4": lambda: apps.MobileNetV2(
            input_shape=shape, alpha=1.4, weights=None
        ),
        "NASNet-A mobile": lambda: apps.NASNetMobile(input_shape=shape, weights=None),
        "MnasNet-A1": lambda: build_model(get_preset("mnasnet-a1"), shape),
        "MnasNet-B1": lambda: build_model(get_preset("mnasnet-b1"), shape),
        "MnasNet-small": lambda: build_model(get_preset("mnasnet-small"), shape),
    }
    return builders[name]()


def convert_models(names: Sequence[str], folder: str) -> dict[str, dict]:
    """Builds and exports each model; returns path, params, size, seconds."""
    import keras

    from mnas.latency import export_to_file, tflite_file_name

    out = {}
    for name in names:
        keras.backend.clear_session()
        start = time.perf_counter()
        model = build_keras_model(name)
        exported = export_to_file(model, os.path.join(folder, tflite_file_name(name)))
        seconds = time.perf_counter() - start
        out[name] = {
            "path": exported.path,
            "params": int(model.count_params()),
            "size_bytes": exported.size_bytes,
            "convert_s": seconds,
        }
        print(
            f"  converted {name}: {exported.size_bytes:,} bytes in {seconds:.1f} s",
            flush=True,
        )
    return out


def time_interleaved(
    paths: dict[str, str],
    rounds: int,
    measure: Callable[[str], T],
    log: Callable[[str], None] | None = None,
) -> dict[str, list[T]]:
    """Per-round measurements per model; round r starts at model r (rotated).

    ``measure(path)`` times one file once (e.g. returns its median ms).
    """
    names = list(paths)
    results: dict[str, list[T]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            results[name].append(measure(paths[name]))
        if log:
            log(
                f"  round {r + 1}/{rounds}: "
                + ", ".join(f"{n} {_short(results[n][-1])}" for n in names)
            )
    return results


def _short(value: object) -> str:
    if isinstance(value, tuple):
        return "/".join(_short(v) for v in value)
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def host_measure(
    runs: int, cpus: Sequence[int] | None
) -> Callable[[str], tuple[float, float]]:
    """One host timing: 1 thread, XNNPACK, a short warm-up, ``runs`` runs.

    Returns (median ms, fastest run ms).
    """
    from mnas.latency.backends.host import HostBackend

    backend = HostBackend(
        num_threads=1,
        warmup_runs=3,
        warmup_min_secs=0.0,
        num_runs=runs,
        min_secs=0.0,
        cpus=cpus,
    )

    def measure(path: str) -> tuple[float, float]:
        result = backend.measure(path)
        return result.median_ms, result.min_ms

    return measure


def ratios_to(
    timings: dict[str, ModelTiming], reference: str, field: str = "round_medians"
) -> dict[str, float]:
    """Median over rounds of (model's round value / reference's round value).

    ``field`` is ``round_medians`` or ``round_mins``.
    """
    ref = getattr(timings[reference], field)
    return {
        name: statistics.median(m / r for m, r in zip(getattr(t, field), ref))
        for name, t in timings.items()
    }


def rank(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson correlation of the ranks)."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("spearman needs two sequences of equal length >= 2")
    rx, ry = np.array(rank(x)), np.array(rank(y))
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = float(np.sqrt((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denominator) if denominator else float("nan")


def make_table(timings: dict[str, ModelTiming]) -> tuple[str, dict[str, float]]:
    """The printed table and the Spearman correlations host vs paper.

    Correlations are keyed ``median`` and (when round minimums exist)
    ``fastest``, over the models that have a paper figure.
    """
    from mnas.io.tables import format_table

    have_fastest = all(t.round_mins for t in timings.values())
    host_ratio = ratios_to(timings, REFERENCE_MODEL)
    fast_ratio = (
        ratios_to(timings, REFERENCE_MODEL, "round_mins") if have_fastest else {}
    )
    paper_ref = PAPER_PIXEL1_MS[REFERENCE_MODEL]
    rows = []
    for name, t in timings.items():
        paper = PAPER_PIXEL1_MS.get(name)
        low, high = t.spread
        row = [
            name,
            "-" if t.params is None else f"{t.params / 1e6:.2f}M",
            round(t.median, 2),
            f"{low:.2f}-{high:.2f}",
            round(t.iqr, 2),
            round(host_ratio[name], 3),
        ]
        if have_fastest:
            row += [round(t.fastest, 2), round(fast_ratio[name], 3)]
        row += [
            "n/a" if paper is None else f"{paper:g}",
            "n/a" if paper is None else f"{paper / paper_ref:.3f}",
        ]
        rows.append(tuple(row))
    headers = ["model", "params", "host ms", "round min-max", "IQR", "host / MV2"]
    if have_fastest:
        headers += ["fastest ms", "fastest / MV2"]
    headers += ["Pixel 1 ms", "paper / MV2"]
    table = format_table(headers, rows)
    with_paper = [n for n in timings if PAPER_PIXEL1_MS.get(n) is not None]
    paper_ms = [PAPER_PIXEL1_MS[n] for n in with_paper]
    rhos = {"median": spearman([timings[n].median for n in with_paper], paper_ms)}
    if have_fastest:
        rhos["fastest"] = spearman([timings[n].fastest for n in with_paper], paper_ms)
    return table, rhos


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per round")
    parser.add_argument(
        "--cpus",
        default=None,
        help="CPU list to pin timing to (default: the highest CPU we may use)",
    )
    parser.add_argument(
        "--models",
        default=",".join(PAPER_PIXEL1_MS),
        help="comma list of models (default: all)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from mnas.latency.backends.affinity import parse_cpu_list
    from mnas.latency.backends.sysinfo import host_cpu_model, litert_version

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in PAPER_PIXEL1_MS]
    if unknown or REFERENCE_MODEL not in names:
        parser.error(
            f"unknown models {unknown}; choose from {list(PAPER_PIXEL1_MS)} "
            f"(must include {REFERENCE_MODEL!r})"
        )
    if args.rounds < 1 or args.runs < 1:
        parser.error("--rounds and --runs must be >= 1")
    cpus = parse_cpu_list(args.cpus) if args.cpus else (max(os.sched_getaffinity(0)),)

    print(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"cpu: {host_cpu_model()}, {litert_version()}, pinned to CPUs {list(cpus)}")
    print(f"load average before: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="mnas-paper-table-") as folder:
        start = time.perf_counter()
        files = convert_models(names, folder)
        print(f"converted {len(files)} models in {time.perf_counter() - start:.0f} s")
        print(f"load average before timing: {load_average()}")
        measured = time_interleaved(
            {n: f["path"] for n, f in files.items()},
            args.rounds,
            host_measure(args.runs, cpus),
            log=lambda line: print(line, flush=True),
        )
    timings = {
        name: ModelTiming(
            name,
            tuple(m for m, _ in measured[name]),
            tuple(f for _, f in measured[name]),
            params=files[name]["params"],
            size_bytes=files[name]["size_bytes"],
            convert_s=files[name]["convert_s"],
        )
        for name in names
    }
    table, rhos = make_table(timings)
    print(f"load average after: {load_average()}")
    print()
    print(
        f"LiteRT XNNPACK, 1 thread, 224x224, batch 1, float32; {args.rounds} "
        f"interleaved rounds x {args.runs} runs; host ms = median of round "
        "medians; fastest ms = median of round minimums"
    )
    print(table)
    print()
    with_paper = [n for n in names if PAPER_PIXEL1_MS.get(n) is not None]
    print(
        f"Spearman rank correlation, host vs Pixel 1, over {len(with_paper)} "
        f"models with paper figures: {rhos['median']:.3f} (host ms), "
        f"{rhos['fastest']:.3f} (fastest ms)"
    )
    print()
    print("command: python " + shlex.join([sys.argv[0], *(argv or sys.argv[1:])]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
