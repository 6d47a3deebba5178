"""Figures of a finished (or running) ``mnas-search --evaluation=shared`` run,
from its journal: architectures sampled, the first one's cost (the tracing),
per-step medians and means of the recorded timings (wall seconds; ``cpu_s``
is the search process's CPU seconds), the shared accuracy early and late, the
mean reward of the controller's first and last quarter of samples, and the
verification trials.

  python benchmarks/shared_journal_stats.py runs/shared/trials.jsonl
"""

from __future__ import annotations

import json
import statistics
import sys

KEYS = ("train_s", "apply_s", "eval_s", "latency_s", "batch_s", "sample_s")


def main(path: str) -> None:
    with open(path) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    latest = {}
    for record in records:
        latest[record["trial_id"]] = record
    shared = [
        r
        for r in latest.values()
        if r.get("phase") in ("warmup", "search") and r["status"] == "COMPLETED"
    ]
    print(f"architectures: {len(shared)}")
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


if __name__ == "__main__":
    main(sys.argv[1])
