"""Claiming a work directory for a run: fresh, or resumed with the same config.

``mnas-search`` and ``mnas-dnas`` share the rule: a directory that already
holds a ``config.json`` is only reused with ``--resume``, and only if nothing
but the resumable fields differ; the differences are listed when it is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

from mnas.io.atomic import write_json_atomic

CONFIG_FILE = "config.json"


def config_differences(
    saved: Mapping[str, Any], current: Mapping[str, Any], resumable: Collection[str]
) -> list[str]:
    """Human-readable differences that forbid a resume."""
    return [
        f"{key}: saved {saved.get(key)!r}, now {current.get(key)!r}"
        for key in sorted(set(saved) | set(current))
        if key not in resumable and saved.get(key) != current.get(key)
    ]


def claim_work_dir(
    work_dir: str,
    config: Mapping[str, Any],
    resume: bool,
    resumable: Collection[str],
    error: Callable[[str], Exception],
    state_file: str | None = None,
) -> None:
    """Writes ``config.json`` into ``work_dir`` unless the directory belongs to
    another run. ``state_file``: a file whose presence without a config means the
    config is lost, so a resume is refused."""
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, CONFIG_FILE)
    current = json.loads(json.dumps(dict(config)))
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
        if not resume:
            raise error(
                f"{work_dir} already holds a search; pass --resume to "
                "continue it or choose a new --work_dir"
            )
        differences = config_differences(saved, current, resumable)
        if differences:
            raise error(
                f"cannot resume: {work_dir} belongs to a different config:\n  "
                + "\n  ".join(differences)
            )
    elif resume and state_file and os.path.exists(os.path.join(work_dir, state_file)):
        raise error(
            f"cannot resume: {path} is missing, so the journal's config is unknown"
        )
    write_json_atomic(path, current)
