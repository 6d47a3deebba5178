"""The trial journal: an append-only, fsync'd JSON-lines file.

Each status change of a trial appends one full record, so the file is a log and
the current state of a trial is its last line. Nothing is rewritten in place; a
crash can at worst leave a truncated last line, which ``Journal.open`` cuts off
and reports.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Literal

Status = Literal["RUNNING", "COMPLETED", "FAILED"]
STATUSES: tuple[str, ...] = ("RUNNING", "COMPLETED", "FAILED")


class JournalError(RuntimeError):
    """The journal cannot be read without losing data."""


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    trial_id: int
    status: Status
    proposal_id: int
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
    time: float = dataclasses.field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"trial status must be one of {STATUSES}, got {self.status!r}"
            )
        object.__setattr__(self, "actions", tuple(int(a) for a in self.actions))
        object.__setattr__(self, "block_strings", tuple(self.block_strings))

    @property
    def finished(self) -> bool:
        return self.status != "RUNNING"

    def replace(self, **changes: Any) -> TrialRecord:
        return dataclasses.replace(self, time=time.time(), **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Journal:
    """Appends records durably and replays them on open."""

    def __init__(self, path: str, records: list[TrialRecord], notes: list[str]):
        self.path = path
        self._records = records
        self.recovery_notes = notes

    @classmethod
    def open(cls, path: str) -> Journal:
        records: list[TrialRecord] = []
        notes: list[str] = []
        if os.path.exists(path):
            with open(path, "rb") as handle:
                data = handle.read()
            lines = data.split(b"\n")
            good_bytes = 0
            for number, line in enumerate(lines, 1):
                is_last = number == len(lines)
                if not line.strip():
                    good_bytes += len(line) + (0 if is_last else 1)
                    continue
                try:
                    record = TrialRecord.from_dict(json.loads(line))
                except (ValueError, TypeError) as error:
                    if is_last:  # a write cut short by a crash: drop it and say so
                        notes.append(
                            f"{path}: dropped a truncated last line ({len(line)} bytes) "
                            "left by an interrupted write"
                        )
                        break
                    raise JournalError(
                        f"{path}: line {number} is not a valid trial record ({error}); "
                        "refusing to continue rather than lose trials"
                    ) from None
                if is_last:  # complete JSON without its newline: keep, add newline
                    notes.append(f"{path}: last line had no newline; completed it")
                    good_bytes += len(line)
                    records.append(record)
                    with open(path, "r+b") as handle:
                        handle.truncate(good_bytes)
                        handle.seek(good_bytes)
                        handle.write(b"\n")
                        handle.flush()
                        os.fsync(handle.fileno())
                    good_bytes += 1
                    continue
                records.append(record)
                good_bytes += len(line) + 1
            if good_bytes < len(data):
                with open(path, "r+b") as handle:
                    handle.truncate(good_bytes)
                    handle.flush()
                    os.fsync(handle.fileno())
        return cls(path, records, notes)

    def append(self, record: TrialRecord) -> None:
        line = record.to_json() + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._records.append(record)

    @property
    def records(self) -> tuple[TrialRecord, ...]:
        return tuple(self._records)

    def latest(self) -> dict[int, TrialRecord]:
        """The current state of every trial, in order of first appearance."""
        state: dict[int, TrialRecord] = {}
        for record in self._records:
            state[record.trial_id] = record
        return state

    def next_trial_id(self) -> int:
        return max((r.trial_id for r in self._records), default=-1) + 1
