"""What a search shows: a progress line per trial, and the table of the best.

The progress line carries the bar, elapsed time, ETA, the trial just finished
and the best trial so far.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from mnas.io.progress import Progress
from mnas.io.tables import format_table
from mnas.model.cost import compute_stats
from mnas.search.callbacks import Callback
from mnas.search.scoring import latency_note
from mnas.search.trial import TrialRecord
from mnas.search_space import ArchSpec


def trial_line(record: TrialRecord, best: TrialRecord | None) -> str:
    """``trial 3: acc 0.812 lat 6.10 ms reward 0.7931 | best: trial 1 ...``."""
    if record.status == "COMPLETED":
        text = (
            f"trial {record.trial_id}: acc {record.accuracy:.3f} "
            f"lat {record.latency_ms:.2f} ms{latency_note(record.latency)} "
            f"reward {record.reward:.4f}"
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


class SharedDisplay(Callback):
    """The progress line of a search with shared weights: thousands of trials
    a few per second, so one line at most every ``every_s`` seconds (and
    for the last): bar, ETA, architectures per second, the phase, the trial
    just finished, the best so far, the mean reward of the last 100 and
    ``note()`` (the lookup table filling up, say)."""

    def __init__(
        self,
        num_trials: int,
        stream: TextIO | None = None,
        every_s: float = 10.0,
        note: Callable[[], str | None] | None = None,
    ) -> None:
        self.num_trials = num_trials
        self.stream = stream
        self.every_s = every_s
        self.note = note
        self._progress: Progress | None = None
        self._finished = 0
        self._start = (0, 0.0)
        self._shown = 0.0
        self._recent: collections.deque[float] = collections.deque(maxlen=100)

    def on_search_begin(self, finished: int) -> None:
        self._finished = finished
        self._progress = Progress(self.num_trials, finished, self.stream)
        self._start = (finished, time.monotonic())
        self._shown = time.monotonic()

    def on_trial_end(self, record: TrialRecord, ranked: Sequence[TrialRecord]) -> None:
        if record.phase == "verify":
            return
        if self._progress is None:
            self.on_search_begin(self._finished)
        self._finished += 1
        if record.status == "COMPLETED":
            self._recent.append(record.reward)
        now = time.monotonic()
        if now - self._shown < self.every_s and self._finished < self.num_trials:
            return
        self._shown = now
        done, began = self._start
        rate = (self._finished - done) / max(1e-9, now - began)
        parts = [
            f"{rate:.2f} arch/s",
            record.phase or "",
            trial_line(record, ranked[0] if ranked else None),
        ]
        if self._recent:
            parts.append(
                f"mean reward (last {len(self._recent)}) "
                f"{sum(self._recent) / len(self._recent):.4f}"
            )
        note = self.note() if self.note is not None else None
        if note:
            parts.append(note)
        self._progress.update(self._finished, " | ".join(p for p in parts if p))


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
