"""The lookup table weight-sharing evaluation scores latency with.

A shared search times nothing while it samples: each path's latency is the
table's prediction (``mnas.latency.lut.predictor``). A table missing from disk
is started empty on the search's backend instead of refused: the predictor
measures each entry the sampled paths need the first time one does (about
0.1 s each on the host; the whole MnasNet space has 2,685, built in ~20
minutes by ``mnas-latency --build_lut``) and appends it, so the cost is paid
once per machine.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass
class TableFill:
    """How many entries the table had when the search opened it."""

    path: str
    started: bool
    initial_entries: int

    def note(self, predictor) -> str | None:
        """``lut +N measured`` once entries were added, for the progress line."""
        added = len(predictor.table) - self.initial_entries
        if not added and not self.started:
            return None
        return f"lut +{added} measured"


def open_shared_predictor(latency, lut_path: str, space):
    """``(predictor, TableFill)`` for the table at ``lut_path``, started empty
    on ``latency``'s backend when there is none; missing entries are measured
    on that backend and appended. A table of another backend or space is
    refused (``LookupTableError``, naming both)."""
    from mnas.latency.backend import make_backend
    from mnas.latency.config import load_predictor
    from mnas.latency.lut.builder import open_or_create
    from mnas.latency.lut.predictor import LatencyPredictor

    if os.path.exists(lut_path) and os.path.getsize(lut_path) > 0:
        predictor = load_predictor(latency, lut_path, space)
        return predictor, TableFill(lut_path, False, len(predictor.table))
    backend = make_backend(latency.backend, **latency.backend_options())
    table = open_or_create(lut_path, backend, space)
    return LatencyPredictor(table, backend), TableFill(lut_path, True, len(table))
