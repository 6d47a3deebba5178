"""The reference model for relative latency, exported on first use.

A target given as "as fast as MobileNetV2 on this device" survives a change
of machine speed, and a ratio measured in the same rounds cancels part of
what moves both models at once.  The reference's ``.tflite`` comes from a
function the caller passes in (the binaries build MobileNetV2 1.0 at the
search resolution with ``mnas.model``), so this layer never imports the
model builder.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

DEFAULT_REFERENCE = "MobileNetV2 1.0"


def default_reference_name(resolution: int) -> str:
    """``MobileNetV2 1.0 @224``: the default reference at a resolution."""
    return f"{DEFAULT_REFERENCE} @{int(resolution)}"


class ReferenceModel:
    """A named reference whose file is made once, when first needed.

    ``export`` returns either the ``.tflite`` bytes (written under
    ``directory``, a temporary one by default) or the path of a file it
    wrote itself.
    """

    def __init__(
        self,
        name: str,
        export: Callable[[], bytes | str | os.PathLike],
        directory: str | os.PathLike | None = None,
    ) -> None:
        if not name:
            raise ValueError("a reference model needs a name")
        self.name = name
        self._export = export
        self._directory = directory
        self._path: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, name: str, path: str | os.PathLike) -> ReferenceModel:
        """A reference that is already a file."""
        return cls(name, lambda: str(path))

    def path(self) -> str:
        with self._lock:
            if self._path is None:
                made = self._export()
                if isinstance(made, bytes):
                    folder = self._directory or tempfile.mkdtemp(
                        prefix="mnas-reference-"
                    )
                    safe = "".join(c if c.isalnum() else "_" for c in self.name)
                    target = Path(folder) / f"{safe}.tflite"
                    target.write_bytes(made)
                    made = target
                if not Path(made).is_file():
                    raise ValueError(
                        f"reference {self.name!r}: export gave {made}, which is not a file"
                    )
                self._path = str(made)
            return self._path
