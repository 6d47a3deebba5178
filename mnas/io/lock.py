"""Exclusive locks held for a run: one process per work directory or table.

``fcntl.flock`` on a lock file: the kernel drops the lock when the holder's
file descriptor closes, so a killed process never leaves a stale lock. The
holder writes its pid into the file, so a refused process can name it.
"""

from __future__ import annotations

import fcntl
import os


class LockedError(ValueError):
    """Another process holds the lock."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


class FileLock:
    """An exclusive, non-blocking lock on ``path`` (created if missing).

    ``what`` names the locked thing in the refusal message (``"work
    directory runs/x"``). Use as a context manager, or ``acquire``/``release``.
    """

    def __init__(self, path: str | os.PathLike, what: str) -> None:
        self.path = os.fspath(path)
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> FileLock:
        if self._fd is not None:
            return self
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            holder = (
                f"pid {pid}"
                if pid is not None
                else "a process that has not written its pid yet"
            )
            raise LockedError(
                f"{self.what} is in use by another process ({holder}); wait for "
                f"it to finish or stop it (lock file {self.path})",
                pid,
            ) from None
        except BaseException:
            os.close(fd)
            raise
        stamp = f"{os.getpid()}\n".encode()
        os.pwrite(fd, stamp, 0)
        os.ftruncate(fd, len(stamp))
        self._fd = fd
        return self

    def release(self) -> None:
        """Unlocks; the file stays (removing it would race a new holder)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace")
        return int(text.split("\n", 1)[0])
    except (OSError, ValueError):
        return None
