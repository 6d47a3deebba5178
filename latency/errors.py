"""Errors raised by the latency layer.

Every measurement failure (a crash, a timeout, a device that vanished,
output nobody can parse) becomes a :class:`LatencyError` that carries the
command and the tail of its output, so a failed search step can be
diagnosed from the log alone instead of being re-run by hand.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

#: How much of a command's output an error keeps (the end is what matters).
OUTPUT_TAIL_CHARS = 2000


def tail(text: str | bytes | None, limit: int = OUTPUT_TAIL_CHARS) -> str:
    """Returns the last ``limit`` characters of ``text`` as a string."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text[-limit:]


def format_command(command: Sequence[str] | str | None) -> str:
    """Renders a command the way a user could paste it into a shell."""
    if command is None:
        return "<none>"
    if isinstance(command, str):
        return command
    return shlex.join(str(part) for part in command)


class LatencyError(RuntimeError):
    """A latency measurement failed; says what ran and what it printed."""

    def __init__(
        self,
        message: str,
        command: Sequence[str] | str | None = None,
        output_tail: str | bytes | None = None,
    ) -> None:
        self.reason = message
        self.command: list[str] | str | None = (
            command if command is None or isinstance(command, str) else list(command)
        )
        self.output_tail = tail(output_tail)
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.reason]
        if self.command is not None:
            parts.append(f"command: {format_command(self.command)}")
        if self.output_tail:
            parts.append(
                f"output (last {OUTPUT_TAIL_CHARS} chars):\n{self.output_tail}"
            )
        return "\n".join(parts)

    def __reduce__(self):
        # Keeps the error intact across process boundaries (pools, executors).
        return (type(self), (self.reason, self.command, self.output_tail))
