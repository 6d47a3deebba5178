"""The latency lookup table: per-layer latencies of one backend and one space.

The file is JSON lines, append-only and fsync'd, like the trial journal:
a header line (format version, the backend's fingerprint, the search space's
identity, resolution, classifier width), then one line per measured entry
(a key measured several times keeps a stable measurement over one flagged
unstable, then its fastest median: load on a shared machine only ever slows
a layer down, so the fastest of measurements taken minutes apart is the
steadiest figure; an adaptive measurement adds its interval, rounds and
verdict to the line, which older tables simply lack), and calibration
lines (the last one counts). Appending is what makes a build resumable and
lets a predictor add an entry it was missing without rewriting the file.
Reading, appending and recovery go through ``mnas.io.jsonl``: a torn last line
(a kill mid-write) is dropped on load and cut by the next append; a corrupt
line before it is refused, naming the line.

A table is only valid for the backend and space it was measured for:
``check_compatible`` refuses anything else, naming both sides.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from mnas.io.jsonl import JsonlError, JsonlLog
from mnas.latency.errors import LatencyError
from mnas.latency.lut.keys import DEFAULT_NUM_CLASSES, LayerKey
from mnas.latency.result import BackendFingerprint

FORMAT = "mnas-latency-lut"
FORMAT_VERSION = 1


class LookupTableError(LatencyError):
    """A table file that cannot be used: unreadable, or for another backend/space."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class MissingEntryError(LookupTableError):
    """The table lacks entries and nothing was given to measure them."""

    def __init__(self, keys: Iterable[LayerKey], path: str | None) -> None:
        self.keys = tuple(keys)
        shown = ", ".join(str(k) for k in self.keys[:3])
        more = f" (+{len(self.keys) - 3} more)" if len(self.keys) > 3 else ""
        where = f" {path}" if path else ""
        super().__init__(
            f"lookup table{where} has no entry for {shown}{more}; pass a latency "
            "backend so missing entries are measured and added, or rebuild the "
            "table with `mnas-latency --build_lut`"
        )


@dataclasses.dataclass(frozen=True)
class Calibration:
    """whole-model ms = scale * (sum of entries) + offset, fitted on measurements.

    ``report`` keeps what the fit was made from and how well it fits, so the
    number a user sees can always be traced back.
    """

    scale: float = 1.0
    offset_ms: float = 0.0
    report: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def apply(self, raw_ms: float) -> float:
        return self.scale * raw_ms + self.offset_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "offset_ms": self.offset_ms,
            "report": dict(self.report),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(
            float(data["scale"]),
            float(data["offset_ms"]),
            dict(data.get("report", {})),
        )


@dataclasses.dataclass(frozen=True)
class TableHeader:
    fingerprint: BackendFingerprint
    space_identity: str
    resolution: int
    num_classes: int = DEFAULT_NUM_CLASSES
    created_unix: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint.to_dict(),
            "fingerprint_key": self.fingerprint.key(),
            "space": self.space_identity,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "created_unix": self.created_unix,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str) -> TableHeader:
        if data.get("format") != FORMAT:
            raise LookupTableError(f"{path} is not a latency lookup table")
        if data.get("format_version") != FORMAT_VERSION:
            raise LookupTableError(
                f"{path} has lookup-table format version "
                f"{data.get('format_version')!r}; this mnas reads version "
                f"{FORMAT_VERSION}: rebuild it with `mnas-latency --build_lut`"
            )
        return cls(
            BackendFingerprint.from_dict(data["fingerprint"]),
            str(data["space"]),
            int(data["resolution"]),
            int(data.get("num_classes", DEFAULT_NUM_CLASSES)),
            float(data.get("created_unix", 0.0)),
        )


@dataclasses.dataclass(frozen=True)
class Entry:
    """One measurement of one key. An adaptive measurement also records its
    interval (``low_ms``-``high_ms`` around ``median_ms``, its estimate), the
    rounds behind it and whether it was ``stable``; None where unknown (a
    plain measurement, or a table written before intervals existed)."""

    median_ms: float
    min_ms: float
    runs: int
    measured_unix: float
    low_ms: float | None = None
    high_ms: float | None = None
    rounds: int | None = None
    stable: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry line's fields; unknown optional ones are left out, so a
        plain entry's line is what older versions wrote."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Entry:
        def optional(name, kind):
            value = record.get(name)
            return None if value is None else kind(value)

        stable = record.get("stable")
        if stable is not None and not isinstance(stable, bool):
            raise TypeError(f"stable must be true, false or null, got {stable!r}")
        return cls(
            float(record["median_ms"]),
            float(record["min_ms"]),
            int(record["runs"]),
            float(record["measured_unix"]),
            optional("low_ms", float),
            optional("high_ms", float),
            optional("rounds", int),
            stable,
        )

    def better_than(self, other: Entry) -> bool:
        """Whether this measurement should replace ``other``: not flagged
        unstable where ``other`` is, else faster."""
        if (self.stable is False) != (other.stable is False):
            return other.stable is False
        return self.median_ms < other.median_ms


class LookupTable:
    """Entries in memory, backed by an append-only file (or none, for tests)."""

    def __init__(
        self,
        header: TableHeader,
        entries: Mapping[str, Entry] | None = None,
        calibration: Calibration | None = None,
        path: str | os.PathLike | None = None,
    ) -> None:
        self.header = header
        self._entries: dict[str, Entry] = dict(entries or {})
        self._counts: dict[str, int] = {key: 1 for key in self._entries}
        self.calibration = calibration or Calibration()
        self.path = None if path is None else os.fspath(path)
        self._log: JsonlLog | None = None  # the file, once created or loaded
        #: What loading recovered (a torn last line), for the caller's log.
        self.recovery_notes: list[str] = []

    # -- files ------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike | None, header: TableHeader) -> LookupTable:
        """A new, empty table; writes the header if ``path`` is given."""
        table = cls(header, path=path)
        if table.path is not None:
            if os.path.exists(table.path) and os.path.getsize(table.path) > 0:
                raise LookupTableError(
                    f"{table.path} already exists; load it to resume, or delete it"
                )
            os.makedirs(os.path.dirname(os.path.abspath(table.path)), exist_ok=True)
            table._log = JsonlLog.open(table.path)
            table._append(header.to_dict())
        return table

    @classmethod
    def load(cls, path: str | os.PathLike) -> LookupTable:
        """Reads a table file. A torn last line is dropped (and cut from the file
        by the next append, so a table that is only read is left as it was); a
        corrupt line before it is refused, naming the line."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise LookupTableError(
                f"no lookup table at {path}; build one with "
                f"`mnas-latency --build_lut --lut={path}`"
            )
        if os.path.isdir(path):
            raise LookupTableError(f"{path} is a directory, not a lookup-table file")
        try:
            log = JsonlLog.open(path, repair_now=False)
        except (JsonlError, OSError) as error:
            raise LookupTableError(str(error)) from None
        records = log.records
        if not records and os.path.getsize(path):
            # Its one line was cut as torn: a header cut short, or another file.
            raise LookupTableError(
                f"{path} is not a lookup table: it holds no complete JSON header line"
            )
        if not records:
            raise LookupTableError(f"{path} is empty: it has no header")
        if not isinstance(records[0], dict):
            raise LookupTableError(f"{path} is not a latency lookup table")
        try:
            header = TableHeader.from_dict(records[0], path)
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, LookupTableError):
                raise
            raise LookupTableError(
                f"{path}: line 1 is not a valid table header ({error!r})"
            ) from None
        table = cls(header, path=path)
        table._log = log
        table.recovery_notes = list(log.recovery_notes)
        for number, record in enumerate(records[1:], start=2):
            try:
                table._read_line(record)
            except (KeyError, TypeError, ValueError) as error:
                raise LookupTableError(
                    f"{path}: line {number} is not a valid table entry ({error})"
                ) from None
        return table

    def _read_line(self, record: Any) -> None:
        if not isinstance(record, dict):
            raise TypeError(f"expected a JSON object, got {type(record).__name__}")
        if "key" in record:
            self._keep(str(record["key"]), Entry.from_dict(record))
        elif "calibration" in record:
            self.calibration = Calibration.from_dict(record["calibration"])

    def _append(self, record: Mapping[str, Any]) -> None:
        if self._log is None:
            return
        try:
            self._log.append(dict(record))
        except JsonlError as error:
            raise LookupTableError(str(error)) from None

    # -- entries ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: LayerKey | str) -> bool:
        return str(key) in self._entries

    def get(self, key: LayerKey | str) -> Entry | None:
        return self._entries.get(str(key))

    def ms(self, key: LayerKey | str) -> float:
        entry = self._entries.get(str(key))
        if entry is None:
            raise MissingEntryError([key], self.path)  # type: ignore[list-item]
        return entry.median_ms

    def sum_ms(self, keys: Iterable[LayerKey]) -> float:
        """Sum of the entries' medians; MissingEntryError names the first gap."""
        entries = self._entries
        total = 0.0
        for key in keys:
            entry = entries.get(str(key))
            if entry is None:
                raise MissingEntryError([key], self.path)
            total += entry.median_ms
        return total

    def keys(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def add(self, key: LayerKey | str, entry: Entry) -> None:
        """Records a measurement (appended to the file at once); the key's entry
        becomes the best of its measurements (``Entry.better_than``)."""
        self._keep(str(key), entry)
        self._append({"key": str(key), **entry.to_dict()})

    def _keep(self, key: str, entry: Entry) -> None:
        self._counts[key] = self._counts.get(key, 0) + 1
        current = self._entries.get(key)
        if current is None or entry.better_than(current):
            self._entries[key] = entry

    def unstable(self) -> list[str]:
        """Keys whose best measurement is flagged unstable."""
        return [key for key, entry in self._entries.items() if entry.stable is False]

    def measurements(self, key: LayerKey | str) -> int:
        """How many times ``key`` was measured."""
        return self._counts.get(str(key), 0)

    def set_calibration(self, calibration: Calibration) -> None:
        self.calibration = calibration
        self._append({"calibration": calibration.to_dict()})

    def missing(self, keys: Iterable[LayerKey]) -> list[LayerKey]:
        seen: set[str] = set()
        result = []
        for key in keys:
            text = str(key)
            if text not in self._entries and text not in seen:
                seen.add(text)
                result.append(key)
        return result

    # -- compatibility ------------------------------------------------------------
    def check_compatible(
        self,
        fingerprint: BackendFingerprint | None = None,
        space_identity: str | None = None,
    ) -> None:
        """Refuses a table measured on another backend or for another space."""
        where = self.path or "lookup table"
        if (
            fingerprint is not None
            and fingerprint.key() != self.header.fingerprint.key()
        ):
            raise LookupTableError(
                f"{where} was measured on backend "
                f"[{_describe(self.header.fingerprint)}], not on "
                f"[{_describe(fingerprint)}]: its latencies do not transfer; "
                "build a table for this backend with `mnas-latency --build_lut`"
            )
        if space_identity is not None and space_identity != self.header.space_identity:
            raise LookupTableError(
                f"{where} was built for search space {self.header.space_identity}, "
                f"not for {space_identity}; build a table for this space with "
                "`mnas-latency --build_lut`"
            )


def _describe(fingerprint: BackendFingerprint) -> str:
    parts = [
        fingerprint.backend,
        fingerprint.device_model,
        fingerprint.device_id,
        f"{fingerprint.num_threads} thread(s)",
        f"runtime {fingerprint.runtime_version}",
    ]
    options = ", ".join(f"{k}={v}" for k, v in sorted(fingerprint.options))
    if options:
        parts.append(options)
    return "; ".join(str(p) for p in parts)


def now() -> float:
    return time.time()
