"""Persistent latency cache (stdlib sqlite), shared by concurrent searches.

A search samples thousands of candidates and many repeat; timing each one
again wastes device time.  Entries are keyed by the SHA-256 of the exact
``.tflite`` bytes plus the backend fingerprint key, so a result is reused
only for the same file on the same device, runtime and settings.  Values
are JSON (no pickle), including a result's interval, conditions and
``stable`` flag, so an unstable figure is stored flagged and re-measured on
the next hit rather than reused.  WAL mode, a busy timeout and short ``BEGIN
IMMEDIATE`` transactions let several processes read and write at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from mnas.latency.backend import LatencyBackend
from mnas.latency.result import BackendFingerprint, LatencyResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS latency (
    model_sha256 TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (model_sha256, fingerprint)
)
"""


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of a ``.tflite`` flatbuffer."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (same value as :func:`sha256_bytes`)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _key(fingerprint: BackendFingerprint | str) -> str:
    return fingerprint if isinstance(fingerprint, str) else fingerprint.key()


class LatencyCache:
    """sqlite-backed map (model SHA-256, fingerprint key) -> LatencyResult.

    Opens a short-lived connection per call, so one instance can be used
    from several threads and any number of processes can share the file.
    """

    def __init__(self, path: str | os.PathLike, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init_lock = threading.Lock()
        self._initialize()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            yield conn
        finally:
            conn.close()

    def _initialize(self) -> None:
        # Switching to WAL takes an exclusive lock; retry if writers race us.
        deadline = time.monotonic() + self.timeout_s
        with self._init_lock:
            while True:
                try:
                    with self._connect() as conn:
                        conn.execute("PRAGMA journal_mode=WAL")
                        conn.execute(_SCHEMA)
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def get(
        self, model_sha256: str, fingerprint: BackendFingerprint | str
    ) -> LatencyResult | None:
        """The cached result, or None."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT result_json FROM latency "
                "WHERE model_sha256 = ? AND fingerprint = ?",
                (model_sha256, _key(fingerprint)),
            ).fetchone()
        return None if row is None else LatencyResult.from_dict(json.loads(row[0]))

    def put(
        self,
        model_sha256: str,
        result: LatencyResult,
        fingerprint: BackendFingerprint | str | None = None,
    ) -> None:
        """Stores (or replaces) a result; key defaults to its own fingerprint."""
        key = _key(fingerprint if fingerprint is not None else result.fingerprint)
        payload = json.dumps(result.to_dict(), sort_keys=True)
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO latency "
                    "(model_sha256, fingerprint, result_json, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (model_sha256, key, payload, time.time()),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def delete(self, model_sha256: str, fingerprint: BackendFingerprint | str) -> bool:
        """Drops one entry; True if it existed."""
        with self._connect() as conn:
            cursor = conn.execute(
                "DELETE FROM latency WHERE model_sha256 = ? AND fingerprint = ?",
                (model_sha256, _key(fingerprint)),
            )
            return cursor.rowcount > 0

    def __len__(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM latency").fetchone()[0])

    def journal_mode(self) -> str:
        with self._connect() as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


class CachedBackend(LatencyBackend):
    """Wraps a backend so that repeated files are answered from the cache.

    ``bypass=True`` always measures afresh (for re-timing suspect entries)
    and stores the new result over the old one.  A cached result flagged
    unstable (:attr:`LatencyResult.stable` is False) is measured again,
    unless ``accept_unstable=True``; ``require_interval=True`` also
    re-measures cached results that carry no interval at all (measured
    before adaptive measurement existed, or by a plain backend), and
    ``require_reference`` (a reference model's name) those without a ratio
    to that reference.  The new result replaces the old, flagged or not.
    """

    def __init__(
        self,
        backend: LatencyBackend,
        cache: LatencyCache,
        bypass: bool = False,
        accept_unstable: bool = False,
        require_interval: bool = False,
        require_reference: str | None = None,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.bypass = bypass
        self.accept_unstable = accept_unstable
        self.require_interval = require_interval
        self.require_reference = require_reference
        self.name = backend.name
        self.hits = 0
        self.misses = 0
        self.remeasured = 0
        self._lock = threading.Lock()

    def fingerprint(self) -> BackendFingerprint:
        return self.backend.fingerprint()

    def measure(self, tflite_path: str) -> LatencyResult:
        digest = sha256_file(tflite_path)
        fingerprint = self.backend.fingerprint()
        stale = False
        if not self.bypass:
            cached = self.cache.get(digest, fingerprint)
            if cached is not None:
                if self._usable(cached):
                    with self._lock:
                        self.hits += 1
                    return cached
                stale = True
        result = self.backend.measure(tflite_path)
        with self._lock:
            self.misses += 1
            self.remeasured += int(stale)
        self.cache.put(digest, result, fingerprint)
        return result

    def _usable(self, cached: LatencyResult) -> bool:
        if cached.stable is False and not self.accept_unstable:
            return False
        if self.require_interval and cached.uncertainty is None:
            return False
        if self.require_reference is not None:
            ratio = None if cached.uncertainty is None else cached.uncertainty.ratio
            return ratio is not None and ratio.reference == self.require_reference
        return True
