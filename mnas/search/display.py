"""What a search shows: a progress line per trial, and the table of the best.

The progress line carries the bar, elapsed time, ETA, the trial just finished
and the best trial so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from mnas.io.progress import Progress
from mnas.io.tables import format_table
from mnas.model.cost import compute_stats
from mnas.search.callbacks import Callback
from mnas.search.trial import TrialRecord
from mnas.search_space import ArchSpec


def trial_line(record: TrialRecord, best: TrialRecord | None) -> str:
    """``trial 3: acc 0.812 lat 6.10 ms reward 0.7931 | best: trial 1 ...``."""
    if record.status == "COMPLETED":
        text = (
            f"trial {record.trial_id}: acc {record.accuracy:.3f} "
            f"lat {record.latency_ms:.2f} ms reward {record.reward:.4f}"
        )
    else:
        text = f"trial {record.trial_id}: FAILED"
    if best is not None:
        text += (
            f" | best: trial {best.trial_id} reward {best.reward:.4f} "
            f"(acc {best.accuracy:.3f}, {best.latency_ms:.2f} ms)"
        )
    return text


class SearchDisplay(Callback):
    """Prints the progress line (to ``stream``, stderr by default)."""

    def __init__(self, num_trials: int, stream: TextIO | None = None) -> None:
        self.num_trials = num_trials
        self.stream = stream
        self._progress: Progress | None = None
        self._finished = 0

    def on_search_begin(self, finished: int) -> None:
        self._finished = finished
        self._progress = Progress(self.num_trials, finished, self.stream)

    def on_trial_end(self, record: TrialRecord, ranked: Sequence[TrialRecord]) -> None:
        self._finished += 1
        if self._progress is None:
            self.on_search_begin(self._finished - 1)
        best = ranked[0] if ranked else None
        self._progress.update(self._finished, trial_line(record, best))


def best_table(entries: list[dict[str, Any]]) -> str:
    """The end-of-search table of ``best.json`` entries."""
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
