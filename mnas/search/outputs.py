"""What a search leaves in its work directory, shared by the three loops.

``mnas-search``, ``mnas-dnas`` and ``mnas-scale --grid_search`` rank their
results the same way (``rank``), write ``best.json`` the same way (a header,
``num_completed`` and the ranked ``best`` entries, each with an ``arch`` that
``--arch=best.json`` reads), plot ``pareto.png`` and keep only the models of
the best entries under ``models/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from mnas.io.atomic import write_json_atomic
from mnas.search.trial import TrialRecord
from mnas.search_space import ArchSpec

BEST_FILE = "best.json"
PARETO_FILE = "pareto.png"
MODELS_DIR = "models"

T = TypeVar("T")


def rank(
    items: Iterable[T],
    score: Callable[[T], float | None],
    ident: Callable[[T], Any],
) -> list[T]:
    """Best score first, ties broken by ``ident`` (lowest first); items without
    a score (failed) come last, in ``ident`` order."""

    def key(item: T) -> tuple:
        value = score(item)
        return (value is None, 0.0 if value is None else -value, ident(item))

    return sorted(items, key=key)


def rank_trials(records: Iterable[TrialRecord]) -> list[TrialRecord]:
    """Completed trials by reward, ties to the earlier trial."""
    return rank(
        (r for r in records if r.status == "COMPLETED"),
        lambda r: r.reward,
        lambda r: r.trial_id,
    )


class Outputs:
    """The result files of one work directory."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir

    def path(self, *parts: str) -> str:
        return os.path.join(self.work_dir, *parts)

    def model_path(self, name: str) -> str:
        """Where a model lives; always under this work directory, so a moved
        directory still finds its models whatever paths its journal holds."""
        return self.path(MODELS_DIR, os.path.basename(name))

    def write_best(
        self, header: Mapping[str, Any], num_completed: int, entries: Sequence[Mapping]
    ) -> dict[str, Any]:
        """``best.json``: ``header`` keys, ``num_completed`` and ``best``."""
        data = {**header, "num_completed": num_completed, "best": list(entries)}
        write_json_atomic(self.path(BEST_FILE), data)
        return data

    def plot_pareto(
        self,
        points: Sequence[tuple[float, float]],
        target_ms: float | None,
        title: str,
        verified: Sequence[tuple[float, float]] = (),
    ) -> None:
        """``pareto.png``: every (latency, accuracy), the front highlighted
        (and ``verified`` points apart)."""
        from mnas.search.pareto import plot_pareto

        plot_pareto(
            self.path(PARETO_FILE), points, target_ms, title=title, verified=verified
        )

    def prune_models(self, finished: Iterable[str], keep: Collection[str]) -> list[str]:
        """Deletes the models of ``finished`` entries that are not in ``keep``
        (file names); models of entries still running are never touched."""
        keep_names = {os.path.basename(name) for name in keep}
        removed = []
        for name in finished:
            path = self.model_path(name)
            if os.path.basename(path) not in keep_names and os.path.exists(path):
                os.remove(path)
                removed.append(path)
        return removed


def trial_model_name(trial_id: int) -> str:
    return f"trial-{trial_id:05d}.tflite"


def trial_entry(
    rank_: int, record: TrialRecord, spec: ArchSpec, tflite: str | None
) -> dict[str, Any]:
    """One ``best.json`` entry of a MnasNet search."""
    return {
        "rank": rank_,
        "trial_id": record.trial_id,
        "reward": record.reward,
        "accuracy": record.accuracy,
        "latency_ms": record.latency_ms,
        "latency_source": record.latency_source,
        "predicted_ms": record.predicted_ms,
        "measured_ms": record.measured_ms,
        "block_strings": list(spec.block_strings),
        "actions": list(record.actions),
        "arch": spec.to_dict(),
        "tflite": tflite,
    }
