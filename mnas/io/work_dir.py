"""Claiming a work directory for a run: fresh, or resumed with the same config.

The three search loops (``mnas-search``, ``mnas-dnas``, ``mnas-scale
--grid_search``) share the rule: a directory that already holds a
``config.json`` is only reused with ``--resume``, and only if nothing but the
resumable fields differ; the differences are listed when it is refused. The
directory is locked for the run, so a second process (a second ``--resume``)
is refused, naming the holder's pid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

from mnas.io.atomic import write_json_atomic
from mnas.io.lock import FileLock

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"


class WorkDirError(ValueError):
    """A work directory that this run cannot claim."""


class WorkDir:
    """A claimed (and locked) work directory; ``release()`` at the end of the run."""

    def __init__(self, path: str, lock: FileLock, resumed: bool) -> None:
        self.path = path
        self.lock = lock
        #: Whether the directory already held this run's config.
        self.resumed = resumed

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> WorkDir:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def config_differences(
    saved: Mapping[str, Any],
    current: Mapping[str, Any],
    resumable: Collection[str],
    prefix: str = "",
) -> list[str]:
    """Human-readable differences that forbid a resume. Sections that are
    objects on both sides are compared field by field (``training.epochs``);
    ``resumable`` names top-level fields or such dotted paths."""
    found = []
    for key in sorted(set(saved) | set(current)):
        name = prefix + key
        old, new = saved.get(key), current.get(key)
        if name in resumable or old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            found.extend(config_differences(old, new, resumable, name + "."))
        else:
            found.append(f"{name}: saved {old!r}, now {new!r}")
    return found


def lock_work_dir(path: str) -> FileLock:
    """Locks ``path`` for this process (LockedError names the holder)."""
    return FileLock(os.path.join(path, LOCK_FILE), f"work directory {path}").acquire()


def claim_work_dir(
    work_dir: str,
    config: Mapping[str, Any],
    resume: bool,
    resumable: Collection[str] = (),
    error: Callable[[str], Exception] = WorkDirError,
    state_file: str | None = None,
    upgrade: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
) -> WorkDir:
    """Locks ``work_dir`` and writes ``config.json`` unless the directory belongs
    to another run.

    ``state_file``: a file whose presence without a config means the config is
    lost, so a resume is refused. ``upgrade`` turns a saved config written by an
    older mnas into the current form before the two are compared (it raises
    ``ValueError`` for one it cannot read).
    """
    os.makedirs(work_dir, exist_ok=True)
    lock = lock_work_dir(work_dir)
    try:
        resumed = _check(
            work_dir, config, resume, resumable, error, state_file, upgrade
        )
    except BaseException:
        lock.release()
        raise
    return WorkDir(work_dir, lock, resumed)


def check_claim(
    work_dir: str,
    config: Mapping[str, Any],
    resume: bool,
    resumable: Collection[str] = (),
    error: Callable[[str], Exception] = WorkDirError,
    state_file: str | None = None,
    upgrade: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
) -> None:
    """Raises what :func:`claim_work_dir` would refuse with the same arguments,
    without locking or writing anything: a binary calls it before the slow
    part of its start (TensorFlow, the data), so a wrong ``--resume`` or a
    changed flag is refused at once."""
    _check(work_dir, config, resume, resumable, error, state_file, upgrade, False)


def _check(
    work_dir, config, resume, resumable, error, state_file, upgrade, write=True
) -> bool:
    path = os.path.join(work_dir, CONFIG_FILE)
    current = json.loads(json.dumps(dict(config)))
    resumed = os.path.exists(path)
    if resumed:
        saved = read_config(path, error)
        if not resume:
            raise error(
                f"{work_dir} already holds a search; pass --resume to "
                "continue it or choose a new --work_dir"
            )
        if upgrade is not None:
            try:
                saved = json.loads(json.dumps(dict(upgrade(saved))))
            except (ValueError, TypeError) as failure:
                raise error(f"cannot resume: {path}: {failure}") from None
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
    if write:
        write_json_atomic(path, current)
    return resumed


def read_config(path: str, error: Callable[[str], Exception] = WorkDirError) -> dict:
    """A saved ``config.json``; ``error`` names the file if it is not a JSON object."""
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except (OSError, ValueError) as failure:
        raise error(f"cannot read {path}: {failure}") from None
    if not isinstance(saved, dict):
        raise error(f"cannot read {path}: it holds no JSON object")
    return saved


def remove_checkpoint_temps(folder: str) -> list[str]:
    """Removes ``<prefix>_temp/`` folders in ``folder``: what a TensorFlow
    checkpoint save killed midway leaves (the save writes its shards there and
    renames them into place at the end). Call it only while holding the work
    directory, so no save of this run is in progress."""
    import shutil

    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith("_temp") and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
