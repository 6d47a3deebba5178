"""A one-line progress bar with ETA, and the best-so-far line."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    def __init__(
        self, total: int, done: int = 0, stream: TextIO | None = None, width: int = 24
    ):
        self.total = max(total, 1)
        self.start_done = done
        self.done = done
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.monotonic()

    def update(self, done: int, message: str = "") -> str:
        self.done = done
        fraction = min(1.0, done / self.total)
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.monotonic() - self.started
        progressed = done - self.start_done
        if progressed > 0 and done < self.total:
            eta = format_duration(elapsed / progressed * (self.total - done))
        else:
            eta = "--" if done < self.total else "0m00s"
        line = (
            f"[{bar}] {done}/{self.total} {fraction:4.0%} "
            f"elapsed {format_duration(elapsed)} ETA {eta}"
        )
        if message:
            line += f" | {message}"
        print(line, file=self.stream, flush=True)
        return line
