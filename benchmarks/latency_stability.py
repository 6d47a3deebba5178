"""Do two adaptive measurements of the same model agree, and is noise flagged?

Five models are measured twice each by independent adaptive measurements
(``mnas.latency.measure.adaptive``: interleaved rounds, a fresh interpreter
per round, pinned to one CPU, until the 95% interval is within ±2% or the
time cap), with MobileNetV2 1.0 interleaved as the reference for ratios.
Two phases: (a) the machine as it is ("idle": nothing started by us), and
(b) with a busy process this script starts on another CPU and stops again.
For each phase the table gives both estimates with their intervals and
verdicts, how far the pair differs, and the same for the ratio to the
reference; the summary gives the share of pairs within ±3% and whether
every result of a pair more than 5% apart was flagged unstable (issue 16's
targets: (a) >= 95% agree, (b) every such result flagged).

  python benchmarks/latency_stability.py --cpus 0 --busy_cpu 1

Takes about 2 x 2 x --max_seconds plus ~1 minute of conversion; run it on
a quiet machine and record the load lines it prints.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REFERENCE = "MobileNetV2 1.0"
MODELS = ("MnasNet-A1", "MnasNet-B1", "MnasNet-small", "MobileNetV2 1.4", "MobileNetV1")


@dataclass(frozen=True)
class Pair:
    """Two independent adaptive results of one model."""

    model: str
    first: object  # LatencyResult
    second: object

    @property
    def difference(self) -> float:
        """|a - b| / mean(a, b) of the two estimates."""
        a, b = self.first.median_ms, self.second.median_ms
        return abs(a - b) / ((a + b) / 2.0)

    @property
    def ratio_difference(self) -> float | None:
        ra, rb = (r.uncertainty.ratio for r in (self.first, self.second))
        if ra is None or rb is None:
            return None
        return abs(ra.ratio - rb.ratio) / ((ra.ratio + rb.ratio) / 2.0)

    @property
    def flagged(self) -> tuple[bool, bool]:
        return (self.first.stable is False, self.second.stable is False)


@dataclass(frozen=True)
class Verdict:
    """Summary of one phase."""

    pairs: int
    agree: float  # share of pairs within ±agree_within
    ratio_agree: float | None
    far_apart: int  # pairs more than flag_above apart
    far_apart_both_flagged: int
    far_apart_one_flagged: int
    flagged_results: int

    @property
    def every_far_result_flagged(self) -> bool:
        return self.far_apart_both_flagged == self.far_apart


def judge(
    pairs: Sequence[Pair], agree_within: float = 0.03, flag_above: float = 0.05
) -> Verdict:
    """Agreement shares and whether results of far-apart pairs were flagged."""
    if not pairs:
        raise ValueError("judge needs at least one pair")
    far = [p for p in pairs if p.difference > flag_above]
    ratio_diffs = [p.ratio_difference for p in pairs]
    has_ratio = all(d is not None for d in ratio_diffs)
    return Verdict(
        pairs=len(pairs),
        agree=sum(p.difference <= agree_within for p in pairs) / len(pairs),
        ratio_agree=(
            sum(d <= agree_within for d in ratio_diffs) / len(pairs)
            if has_ratio
            else None
        ),
        far_apart=len(far),
        far_apart_both_flagged=sum(all(p.flagged) for p in far),
        far_apart_one_flagged=sum(any(p.flagged) and not all(p.flagged) for p in far),
        flagged_results=sum(sum(p.flagged) for p in pairs),
    )


def _cell(result) -> str:
    u = result.uncertainty
    verdict = "stable" if u.stable else "UNSTABLE"
    return f"{result.median_ms:.2f} ±{u.half_width:.1%} {u.rounds}r {verdict}"


def pair_rows(pairs: Sequence[Pair]) -> list[tuple]:
    rows = []
    for p in pairs:
        ratio = p.ratio_difference
        ratios = [r.uncertainty.ratio for r in (p.first, p.second)]
        rows.append(
            (
                p.model,
                _cell(p.first),
                _cell(p.second),
                f"{p.difference:.1%}",
                "-"
                if ratio is None
                else f"{ratios[0].ratio:.3f} / {ratios[1].ratio:.3f}",
                "-" if ratio is None else f"{ratio:.1%}",
            )
        )
    return rows


def describe_verdict(v: Verdict, agree_within: float, flag_above: float) -> str:
    lines = [
        f"pairs within ±{agree_within:.0%}: {v.agree:.0%} of {v.pairs}"
        + ("" if v.ratio_agree is None else f" (ratios: {v.ratio_agree:.0%})"),
        f"results flagged unstable: {v.flagged_results} of {2 * v.pairs}",
        f"pairs more than {flag_above:.0%} apart: {v.far_apart}; both results flagged "
        f"in {v.far_apart_both_flagged}, one in {v.far_apart_one_flagged} -> "
        + (
            "every far result flagged"
            if v.every_far_result_flagged
            else "NOT all flagged"
        ),
    ]
    return "\n".join(lines)


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def run_phase(name, backend, paths, settings, reference, busy_cpu, log) -> list[Pair]:
    from mnas.latency.measure.adaptive import measure_adaptive
    from mnas.latency.measure.interference import busy_neighbour

    bound = 2 * settings.max_seconds + 120.0
    disturb = (
        busy_neighbour(busy_cpu, bound)
        if busy_cpu is not None
        else contextlib.nullcontext()
    )
    log(f"phase {name}: load before {load_line()}")
    outcomes = []
    with disturb:
        for seed in (0, 1):
            start = time.perf_counter()
            outcome = measure_adaptive(
                backend,
                list(paths.values()),
                dataclasses.replace(settings, seed=seed),
                reference,
            )
            log(
                f"  measurement {seed + 1}: {outcome.rounds} rounds, stop {outcome.stop}, "
                f"{time.perf_counter() - start:.0f} s, load {load_line()}"
            )
            for model, result in zip(paths, outcome.results):
                log(f"    {model}: {result.summary()}")
            outcomes.append(outcome)
    log(f"phase {name}: load after {load_line()}")
    return [
        Pair(model, outcomes[0].results[i], outcomes[1].results[i])
        for i, model in enumerate(paths)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma list")
    parser.add_argument("--cpus", default=None, help="CPU to time on (default: lowest)")
    parser.add_argument("--busy_cpu", type=int, default=None, help="CPU to disturb")
    parser.add_argument("--phases", default="idle,busy", help="idle, busy or both")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per round")
    parser.add_argument("--warmup_runs", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.02)
    parser.add_argument("--min_rounds", type=int, default=5)
    parser.add_argument("--max_rounds", type=int, default=100)
    parser.add_argument("--max_seconds", type=float, default=300.0)
    parser.add_argument("--no_reference", action="store_true")
    parser.add_argument("--agree_within", type=float, default=0.03)
    parser.add_argument("--flag_above", type=float, default=0.05)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from latency_paper_table import convert_models

    from mnas.io.tables import format_table
    from mnas.latency.backends.affinity import parse_cpu_list
    from mnas.latency.backends.host import HostBackend
    from mnas.latency.backends.sysinfo import host_cpu_model, litert_version
    from mnas.latency.measure.adaptive import AdaptiveSettings
    from mnas.latency.measure.reference import ReferenceModel

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if set(phases) - {"idle", "busy"}:
        parser.error(f"--phases takes idle and/or busy, got {args.phases!r}")
    allowed = sorted(os.sched_getaffinity(0))
    cpus = parse_cpu_list(args.cpus) if args.cpus else (allowed[0],)
    busy_cpu = args.busy_cpu
    if busy_cpu is None:
        others = [c for c in allowed if c not in cpus]
        busy_cpu = others[0] if others else None
    if "busy" in phases and busy_cpu is None:
        print(f"skipping the busy phase: no CPU besides {list(cpus)} to disturb")
        phases.remove("busy")
    settings = AdaptiveSettings(
        target=args.target,
        min_rounds=args.min_rounds,
        max_rounds=args.max_rounds,
        max_seconds=args.max_seconds,
    )
    backend = HostBackend(
        num_threads=1,
        warmup_runs=args.warmup_runs,
        warmup_min_secs=0.0,
        num_runs=args.runs,
        min_secs=0.0,
        cpus=cpus,
    )

    def log(line: str) -> None:
        print(line, flush=True)

    log(
        f"command: python benchmarks/latency_stability.py {shlex.join(argv or sys.argv[1:])}"
    )
    log(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}")
    log(f"cpu: {host_cpu_model()}, {litert_version()}, timed on CPUs {list(cpus)}")
    log(f"settings: {settings}")
    with tempfile.TemporaryDirectory(prefix="mnas-stability-") as folder:
        files = convert_models([*names, REFERENCE], folder)
        paths = {n: files[n]["path"] for n in names}
        reference = (
            None
            if args.no_reference
            else ReferenceModel.from_file(REFERENCE, files[REFERENCE]["path"])
        )
        for phase in phases:
            disturb = busy_cpu if phase == "busy" else None
            title = "idle" if disturb is None else f"busy process on CPU {disturb}"
            pairs = run_phase(title, backend, paths, settings, reference, disturb, log)
            headers = [
                "model",
                "1st (ms ±, rounds)",
                "2nd",
                "diff",
                "ratio 1st / 2nd",
                "ratio diff",
            ]
            log("")
            log(f"== {title} ==")
            log(format_table(headers, pair_rows(pairs)))
            verdict = judge(pairs, args.agree_within, args.flag_above)
            log(describe_verdict(verdict, args.agree_within, args.flag_above))
            log("")
    return 0


if __name__ == "__main__":
    sys.exit(main())
