"""Whole-file writes that a crash cannot leave half-done: write, fsync, rename.

Every result file (config.json, best.json, weights metadata, .tflite
exports) goes through here, so a reader sees the old file or the new one,
never a torn one.
"""

from __future__ import annotations

import json
import os
from typing import Any


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = path + ".partial"
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Indented, key-sorted JSON with a trailing newline."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def save_figure_atomic(path: str | os.PathLike, figure, **savefig_kwargs: Any) -> None:
    """A matplotlib figure as a PNG, through the same write-fsync-rename."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig_kwargs)
    write_bytes_atomic(path, buffer.getvalue())
