"""The trial journal: an append-only, fsync'd JSON-lines file (``mnas.io.jsonl``).

Each status change of a trial appends one full record, so the file is a log and
the current state of a trial is its last line. Nothing is rewritten in place; a
crash can at worst leave a torn last line, which ``Journal.open`` cuts off and
reports.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Literal

from mnas.io.jsonl import JsonlError, JsonlLog

Status = Literal["RUNNING", "COMPLETED", "FAILED"]
STATUSES: tuple[str, ...] = ("RUNNING", "COMPLETED", "FAILED")


class JournalError(JsonlError):
    """The journal cannot be read without losing data."""


#: What a trial of weight-sharing evaluation (``--evaluation=shared``) is:
#: a path drawn uniformly while the controller waits (``warmup``), a path the
#: controller proposed (``search``), or one of the best architectures trained
#: standalone and timed at the end (``verify``). Standalone searches leave it
#: None.
PHASES: tuple[str, ...] = ("warmup", "search", "verify")


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    trial_id: int
    status: Status
    proposal_id: int | None  # None: not proposed by the controller
    actions: tuple[int, ...]
    block_strings: tuple[str, ...] = ()
    attempt: int = 1
    accuracy: float | None = None
    latency_ms: float | None = None  # what the reward used
    latency: dict[str, Any] | None = None
    # Where latency_ms came from ("measured" or "predicted"), and both numbers
    # when known (--latency=verified re-measures the top predicted trials).
    latency_source: str | None = None
    predicted_ms: float | None = None
    measured_ms: float | None = None
    reward: float | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    error: str | None = None
    tflite_path: str | None = None
    phase: str | None = None  # one of PHASES under weight-sharing evaluation
    # A verify trial: the trial whose architecture it trains standalone, and
    # that architecture's accuracy under the final shared weights on the whole
    # held-out split (what ranked it for verification).
    verifies: int | None = None
    shared_accuracy: float | None = None
    # A shared trial's weight step: loss, learning rate, widened decisions.
    shared: dict[str, float] | None = None
    # The Ray node that ran the trial (its node id); None for a local worker.
    node: str | None = None
    time: float = dataclasses.field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"trial status must be one of {STATUSES}, got {self.status!r}"
            )
        if self.phase is not None and self.phase not in PHASES:
            raise ValueError(f"trial phase must be one of {PHASES}, got {self.phase!r}")
        object.__setattr__(self, "actions", tuple(int(a) for a in self.actions))
        object.__setattr__(self, "block_strings", tuple(self.block_strings))

    @property
    def finished(self) -> bool:
        return self.status != "RUNNING"

    def replace(self, **changes: Any) -> TrialRecord:
        return dataclasses.replace(self, time=time.time(), **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        if not isinstance(data, dict):
            raise TypeError(
                f"a trial record is a JSON object, got {type(data).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Journal:
    """The trial journal: ``TrialRecord`` lines on ``mnas.io.jsonl``.

    Opening it applies the journal rule (a torn last line is cut and noted in
    ``recovery_notes``; a corrupt line before it raises ``JournalError`` naming
    the line).
    """

    def __init__(self, log: JsonlLog[TrialRecord]):
        self._log = log
        self.path = log.path
        self.recovery_notes = log.recovery_notes

    @classmethod
    def open(cls, path: str) -> Journal:
        try:
            log = JsonlLog.open(
                path, TrialRecord.from_dict, TrialRecord.to_dict, "trial record"
            )
        except JsonlError as error:
            raise JournalError(str(error)) from None
        return cls(log)

    def append(self, record: TrialRecord) -> None:
        self._log.append(record)

    @property
    def records(self) -> tuple[TrialRecord, ...]:
        return tuple(self._log.records)

    def latest(self) -> dict[int, TrialRecord]:
        """The current state of every trial, in order of first appearance."""
        state: dict[int, TrialRecord] = {}
        for record in self._log.records:
            state[record.trial_id] = record
        return state

    def next_trial_id(self) -> int:
        return max((r.trial_id for r in self._log.records), default=-1) + 1
