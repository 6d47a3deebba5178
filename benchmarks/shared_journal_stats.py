"""Figures of a finished (or running) ``mnas-search --evaluation=shared`` run,
from its journal: architectures sampled, the first one's cost (the tracing),
per-step medians and means of the recorded timings (wall seconds; ``cpu_s``
is the search process's CPU seconds), the shared accuracy early and late, the
mean reward of the controller's first and last quarter of samples, the
verification trials, and a table per ``--every`` architectures (mean shared
accuracy and reward, median predicted latency, distinct architectures) as
docs/shared_evaluation.md shows it.

  python benchmarks/shared_journal_stats.py runs/shared/trials.jsonl --every 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

KEYS = ("train_s", "apply_s", "eval_s", "latency_s", "batch_s", "sample_s")


def per_window(shared: list[dict], every: int) -> list[str]:
    """Markdown rows: trials, phases, mean shared accuracy and reward, median
    predicted ms and distinct architectures of each ``every`` architectures."""
    rows = [
        "| trials | phase | mean shared accuracy | mean reward | median predicted ms "
        "| distinct architectures |",
        "|---|---|---|---|---|---|",
    ]
    for start in range(0, len(shared), every):
        window = shared[start : start + every]
        phases = " / ".join(dict.fromkeys(r["phase"] for r in window))
        distinct = len({tuple(r["block_strings"]) for r in window})
        rows.append(
            f"| {window[0]['trial_id']}–{window[-1]['trial_id']} | {phases} "
            f"| {statistics.fmean(r['accuracy'] for r in window):.3f} "
            f"| {statistics.fmean(r['reward'] for r in window):.3f} "
            f"| {statistics.median(r['predicted_ms'] for r in window):.2f} "
            f"| {distinct} |"
        )
    return rows


def main(path: str, every: int = 100) -> int:
    try:
        with open(path) as handle:
            records = [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError) as error:
        print(f"shared_journal_stats: cannot read {path}: {error}", file=sys.stderr)
        return 1
    latest = {}
    for record in records:
        latest[record["trial_id"]] = record
    shared = [
        r
        for r in latest.values()
        if r.get("phase") in ("warmup", "search") and r["status"] == "COMPLETED"
    ]
    print(f"architectures: {len(shared)}")
    if not shared:
        return 0
    first = shared[0]["timings"]
    print("first:", {k: round(first.get(k, 0.0), 2) for k in (*KEYS, "cpu_s")})
    rest = shared[1:]
    for key in (*KEYS, "cpu_s"):
        values = [r["timings"][key] for r in rest if key in r["timings"]]
        if values:
            print(
                f"{key}: median {statistics.median(values):.3f} "
                f"mean {statistics.fmean(values):.3f}"
            )
    steps = [sum(r["timings"].get(k, 0.0) for k in KEYS) for r in rest]
    if steps:
        print(
            f"step wall: median {statistics.median(steps):.2f} "
            f"mean {statistics.fmean(steps):.2f}"
        )
    times = [r["time"] for r in shared]
    print(f"first to last record: {times[-1] - times[0]:.1f} s")
    accuracy = [r["accuracy"] for r in shared]
    print(
        f"shared accuracy: first 10 {statistics.fmean(accuracy[:10]):.3f}, "
        f"last 10 {statistics.fmean(accuracy[-10:]):.3f}"
    )
    controlled = [r["reward"] for r in shared if r["phase"] == "search"]
    if controlled:
        quarter = max(1, len(controlled) // 4)
        print(
            f"controller samples: {len(controlled)}; mean reward first quarter "
            f"{statistics.fmean(controlled[:quarter]):.4f}, last quarter "
            f"{statistics.fmean(controlled[-quarter:]):.4f}"
        )
    warmup = [r["reward"] for r in shared if r["phase"] == "warmup"]
    if warmup:
        print(
            f"uniform (RL delay) samples: {len(warmup)}; mean reward "
            f"{statistics.fmean(warmup):.4f}"
        )
    for r in latest.values():
        if r.get("phase") == "verify":
            print(
                f"verify trial {r['trial_id']} (of {r.get('verifies')}): "
                f"{r['status']}, standalone acc {r.get('accuracy')}, measured "
                f"{r.get('measured_ms')} ms, predicted {r.get('predicted_ms')} "
                f"ms, shared acc {r.get('shared_accuracy')}"
            )
    print()
    print("\n".join(per_window(shared, every)))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("journal", help="the run's trials.jsonl")
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args()
    if args.every < 1:
        parser.error("--every must be at least 1")
    sys.exit(main(args.journal, args.every))
