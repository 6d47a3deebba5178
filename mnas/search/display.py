"""The table of best architectures printed at the end of a search."""

from __future__ import annotations

from typing import Any

from mnas.io.tables import format_table
from mnas.model.cost import compute_stats
from mnas.search_space import ArchSpec


def best_table(entries: list[dict[str, Any]]) -> str:
    rows = []
    for entry in entries:
        spec = ArchSpec.from_dict(entry["arch"])
        stats = compute_stats(spec)
        rows.append(
            (
                entry["rank"],
                entry["trial_id"],
                round(entry["reward"], 4),
                round(entry["accuracy"], 4),
                round(entry["latency_ms"], 2),
                round(stats.params / 1e6, 3),
                round(stats.macs / 1e6, 1),
                " ".join(entry["block_strings"]),
            )
        )
    return format_table(
        (
            "rank",
            "trial",
            "reward",
            "accuracy",
            "latency ms",
            "params M",
            "MACs M",
            "blocks",
        ),
        rows,
    )
