"""Runs measurement subprocesses that can neither hang nor fail silently.

``subprocess.run(timeout=...)`` kills only the direct child; a wrapper
script's grandchildren keep the output pipe open and the caller blocks
forever.  Here every command gets its own process group, and a timeout
kills that group (by its id) before the output is collected.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mnas.latency.errors import LatencyError

#: Grace period for collecting output after the process group was killed.
_DRAIN_SECS = 5.0


@dataclass(frozen=True)
class CommandOutput:
    """Exit status and combined stdout+stderr of a finished command."""

    command: tuple[str, ...]
    returncode: int
    output: str

    def describe_exit(self) -> str:
        """Human-readable exit status ("exit code 2", "killed by SIGSEGV")."""
        return describe_returncode(self.returncode)


def describe_returncode(returncode: int) -> str:
    """Names the signal for negative (local) or 128+N (shell) statuses."""
    if returncode < 0:
        return f"killed by {_signal_name(-returncode)}"
    if returncode > 128 and returncode - 128 < signal.NSIG:
        return f"exit code {returncode} ({_signal_name(returncode - 128)}?)"
    return f"exit code {returncode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_command(
    command: Sequence[str],
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> CommandOutput:
    """Runs ``command``; raises LatencyError on timeout or if it cannot start.

    A non-zero exit is returned, not raised: callers decide what it means.
    """
    argv = tuple(str(part) for part in command)
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        raise LatencyError(f"cannot start command: {exc}", list(argv)) from exc
    try:
        raw, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        partial = _kill_group_and_drain(proc)
        raise LatencyError(
            f"command timed out after {timeout_s:g} s and was killed",
            list(argv),
            partial,
        ) from None
    return CommandOutput(argv, proc.returncode, raw.decode("utf-8", errors="replace"))


def _kill_group_and_drain(proc: subprocess.Popen) -> str:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        raw, _ = proc.communicate(timeout=_DRAIN_SECS)
    except subprocess.TimeoutExpired:
        # Something outside the group still holds the pipe; give up on it.
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait(timeout=_DRAIN_SECS)
        raw = b""
    return (raw or b"").decode("utf-8", errors="replace")
