"""Append-only, fsync'd JSON-lines logs: the one journal module of the project.

The trial journal (``trials.jsonl``), the DNAS epoch journal (``epochs.jsonl``)
and the latency lookup table all use it, so all follow one recovery rule:

* a **torn last line** (it does not parse: a write cut short by a crash) is cut
  off, and a recovery note says so;
* a complete last line that lacks its newline is kept, and the newline added;
* any **other line that does not parse is refused** with a ``JsonlError``
  naming the file and the line: that is damage, not an interrupted write, and
  reading on past it would silently lose the records after it.

Each record is one line of key-sorted JSON without NaN, written with a single
``O_APPEND`` write and fsync'd before ``append`` returns.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from mnas.io.atomic import write_bytes_atomic

T = TypeVar("T")


class JsonlError(ValueError):
    """A JSON-lines file that cannot be read or appended without losing data."""


def _identity(value: Any) -> Any:
    return value


def encode_line(data: Any) -> bytes:
    """One record as its line: key-sorted JSON, no NaN, newline-terminated."""
    return (json.dumps(data, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


@dataclasses.dataclass(frozen=True)
class _Repair:
    """Where the good bytes end, and the file size the reader saw."""

    good_end: int
    size: int
    add_newline: bool


def append_bytes(path: str, data: bytes) -> None:
    """Appends ``data`` with ``O_APPEND`` and fsyncs it (and a new file's folder)."""
    created = not os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_folder(os.path.dirname(os.path.abspath(path)))


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class JsonlLog(Generic[T]):
    """The records of one JSON-lines file, and appends to it.

    ``parse`` turns a decoded line into a record (raising ``ValueError``,
    ``TypeError`` or ``KeyError`` if it is not one) and ``dump`` a record into
    JSON-able data; both default to plain JSON values.
    """

    def __init__(
        self,
        path: str,
        records: list[T],
        notes: list[str],
        repair: _Repair | None,
        dump: Callable[[T], Any],
    ) -> None:
        self.path = path
        self.records = records
        #: What recovery did (a cut torn line, a completed newline), for the log.
        self.recovery_notes = notes
        self._repair = repair
        self._dump = dump

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        parse: Callable[[Any], T] = _identity,
        dump: Callable[[T], Any] = _identity,
        what: str = "record",
        repair_now: bool = True,
    ) -> JsonlLog[T]:
        """Reads ``path`` (a missing file holds no records).

        With ``repair_now`` a torn last line is cut from the file at once;
        otherwise only the first ``append`` cuts it, so a reader that never
        writes leaves the file as it found it.
        """
        path = os.fspath(path)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            data = b""
        records, notes, repair = _parse(path, data, parse, what)
        log = cls(path, records, notes, repair, dump)
        if repair_now:
            log.repair()
        return log

    def repair(self) -> None:
        """Cuts a torn last line (or adds a missing newline) in the file."""
        if self._repair is None:
            return
        repair = self._repair
        size = os.path.getsize(self.path)
        if size != repair.size:
            raise JsonlError(
                f"{self.path} changed since it was read ({repair.size} -> {size} "
                "bytes); read it again before appending"
            )
        with open(self.path, "r+b") as handle:
            handle.truncate(repair.good_end)
            if repair.add_newline:
                handle.seek(repair.good_end)
                handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._repair = None

    def append(self, record: T) -> None:
        """Writes ``record`` as one line and fsyncs it; then remembers it."""
        line = encode_line(self._dump(record))
        self.repair()
        append_bytes(self.path, line)
        self.records.append(record)

    def rewrite(self, records: Iterable[T]) -> None:
        """Replaces the whole file atomically (a resume repair, never routine)."""
        records = list(records)
        write_bytes_atomic(
            self.path, b"".join(encode_line(self._dump(r)) for r in records)
        )
        self.records = records
        self._repair = None


def _parse(
    path: str, data: bytes, parse: Callable[[Any], Any], what: str
) -> tuple[list[Any], list[str], _Repair | None]:
    lines = data.split(b"\n")  # the piece after the last newline is b"" if complete
    last = len(lines)
    records: list[Any] = []
    notes: list[str] = []
    offset = 0
    for number, line in enumerate(lines, 1):
        end = offset + len(line) + (0 if number == last else 1)
        if not line.strip():
            offset = end
            continue
        try:
            value = json.loads(line)
        except ValueError as error:  # bad JSON or bad UTF-8
            if number == last:
                notes.append(
                    f"{path}: cut a torn last line (line {number}, {len(line)} "
                    "bytes) left by an interrupted write"
                )
                return records, notes, _Repair(offset, len(data), False)
            raise JsonlError(
                f"{path}: line {number} is corrupt ({_reason(error)}); only a torn "
                "last line is cut automatically: repair or remove this line by hand"
            ) from None
        try:
            records.append(parse(value))
        except (ValueError, TypeError, KeyError) as error:
            raise JsonlError(
                f"{path}: line {number} is not a valid {what} ({_reason(error)})"
            ) from None
        offset = end
    if lines[-1].strip():  # parsed, but its newline never made it
        notes.append(
            f"{path}: the last line (line {last}) was complete but had no newline; "
            "added it"
        )
        return records, notes, _Repair(len(data), len(data), True)
    return records, notes, None


def _reason(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, KeyError):
        text = f"missing {text}"
    return text.splitlines()[0][:200]
